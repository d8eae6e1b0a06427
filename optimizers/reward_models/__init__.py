"""Reward models r(x, a) = P(click | user, action embedding)."""
