"""Actions (texts with embeddings), the immutable deployed bank, and the catalog that owns action ids.

Ids are sequential (``A00000``, ``A00001``, ...) and never reused within a catalog; the same normalised
text always resolves to the same id, which is how the company's targeting agent keeps what it learned
about an action that stays in the bank.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_array, check_int, check_str
from actionbank_env.errors import ConfigError, DataError

if TYPE_CHECKING:
    from actionbank_env.core.embedders import Embedder

__all__ = [
    "Action",
    "ActionBank",
    "ActionCatalog",
    "normalize_text",
    "MAX_TEXT_LENGTH",
    "format_action_id",
    "bank_actions",
    "bank_texts",
]

#: Longest action text accepted anywhere (subject lines are short; this bounds LLM output too).
MAX_TEXT_LENGTH = 200

_WHITESPACE = re.compile(r"\s+")


def bank_actions(data: Any, *, source: str = "bank") -> list[dict[str, Any]]:
    """The action records of a bank file's content (``{"actions": [{"id": ..., "text": ..., ...}, ...]}``), checked.

    Raises:
        DataError: Naming ``source`` (the file), when the content is not an object holding a list under
            ``"actions"`` whose items are objects with a string ``"text"``.

    Example:
        >>> [a["text"] for a in bank_actions({"actions": [{"id": "A1", "text": "Hi"}]})]
        ['Hi']
        >>> bank_actions({"actions": 5}, source="new_action_bank.json")
        Traceback (most recent call last):
        ...
        actionbank_env.errors.DataError: new_action_bank.json must hold a list of actions under 'actions', got int.
    """
    actions = data.get("actions") if isinstance(data, dict) else None
    if not isinstance(actions, list):
        got = type(actions).__name__ if isinstance(data, dict) else f"a JSON {type(data).__name__}"
        raise DataError(f"{source} must hold a list of actions under 'actions', got {got}.")
    for i, item in enumerate(actions):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise DataError(f"{source} actions[{i}] must be an object with a string 'text', got {str(item)[:80]!r}.")
    return actions


def bank_texts(data: Any, *, source: str = "bank") -> tuple[str, ...]:
    """The texts of a bank file's content, in order (see :func:`bank_actions`)."""
    return tuple(a["text"] for a in bank_actions(data, source=source))


def clean_text(text: str) -> str:
    """Display form of a text: NFKC, control characters removed, white space collapsed (case kept).

    Example:
        >>> clean_text(" Hello\\x00  World ")
        'Hello World'
    """
    text = unicodedata.normalize("NFKC", text)
    if not text.isprintable():  # printable text has no category-C character: nothing to remove (the usual case)
        text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\t\n ")
    return _WHITESPACE.sub(" ", text).strip()


def normalize_text(text: str) -> str:
    """Canonical form used to decide whether two texts are the same action: :func:`clean_text`, case-folded.

    Example:
        >>> normalize_text("  Last  CHANCE:\\t20% off ")
        'last chance: 20% off'
    """
    return clean_text(text).casefold()


def _same_action(a: Action, b: Action) -> bool:
    return (a.id, a.text, a.origin, a.created_iteration) == (b.id, b.text, b.origin, b.created_iteration) and bool(
        np.array_equal(a.embedding, b.embedding)
    )


def format_action_id(number: int) -> str:
    """Sequential action id for ``number``.

    Example:
        >>> format_action_id(7)
        'A00007'
    """
    return f"A{number:05d}"


@dataclass(frozen=True, slots=True, eq=False)
class Action:
    """One marketing message.

    Attributes:
        id: Sequential id from the catalog, never reused.
        text: The message (subject line), cleaned for display.
        embedding: float32 vector, shape (d_embed,), read-only.
        origin: Where the text came from (``"initial"``, ``"offline"``, ``"openai"``, ``"user"``, ...).
        created_iteration: Campaign iteration at which the catalog first saw the text.
    """

    id: str
    text: str
    embedding: NDArray[np.float32]
    origin: str = "user"
    created_iteration: int = 0

    def __post_init__(self) -> None:
        check_str("Action.id", self.id)
        check_str("Action.text", self.text, max_len=MAX_TEXT_LENGTH)
        emb = check_array("Action.embedding", self.embedding, ndim=1, dtype=np.float32)
        emb.setflags(write=False)
        object.__setattr__(self, "embedding", emb)

    def to_dict(self, *, with_embedding: bool = True) -> dict[str, Any]:
        """JSON-ready dict (embedding as a list of floats)."""
        out: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "origin": self.origin,
            "created_iteration": self.created_iteration,
        }
        if with_embedding:
            out["embedding"] = [float(v) for v in self.embedding]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Action:
        """Inverse of :meth:`to_dict` (requires the embedding)."""
        return cls(
            id=data["id"],
            text=data["text"],
            embedding=np.asarray(data["embedding"], dtype=np.float32),
            origin=data.get("origin", "user"),
            created_iteration=int(data.get("created_iteration", 0)),
        )

    def __repr__(self) -> str:
        return f"Action(id={self.id!r}, text={self.text!r}, origin={self.origin!r}, d={self.embedding.shape[0]})"


class ActionBank:
    """The ordered, immutable set of actions a targeting agent chooses from.

    Args:
        actions: The actions, in order; ids must be distinct and embeddings of one dimension.

    Attributes:
        embeddings: float32 matrix, shape (n_actions, d_embed), read-only.

    Example:
        >>> a = Action("A00000", "Hi", np.ones(3, np.float32))
        >>> bank = ActionBank([a])
        >>> len(bank), bank.index_of("A00000"), bank.embeddings.shape
        (1, 0, (1, 3))
    """

    __slots__ = ("_actions", "_index", "embeddings")

    def __init__(self, actions: Iterable[Action]) -> None:
        self._actions: tuple[Action, ...] = tuple(actions)
        for i, a in enumerate(self._actions):
            if not isinstance(a, Action):
                raise TypeError(f"ActionBank.actions[{i}] must be an Action, got {type(a).__name__}.")
        self._index = {a.id: i for i, a in enumerate(self._actions)}
        if len(self._index) != len(self._actions):
            dupes = sorted({a.id for a in self._actions if sum(b.id == a.id for b in self._actions) > 1})
            raise ConfigError(f"ActionBank.actions must have distinct ids, got duplicates {dupes}.")
        dims = {a.embedding.shape[0] for a in self._actions}
        if len(dims) > 1:
            raise ConfigError(f"ActionBank.actions must share one embedding dimension, got {sorted(dims)}.")
        if self._actions:
            emb = np.stack([a.embedding for a in self._actions]).astype(np.float32)
        else:
            emb = np.zeros((0, 0), dtype=np.float32)
        emb.setflags(write=False)
        self.embeddings: NDArray[np.float32] = emb

    @property
    def actions(self) -> tuple[Action, ...]:
        """The actions in bank order."""
        return self._actions

    @property
    def ids(self) -> tuple[str, ...]:
        """Action ids in bank order."""
        return tuple(a.id for a in self._actions)

    @property
    def texts(self) -> tuple[str, ...]:
        """Action texts in bank order."""
        return tuple(a.text for a in self._actions)

    @property
    def d_embed(self) -> int:
        """Embedding dimension (0 for an empty bank)."""
        return int(self.embeddings.shape[1]) if self._actions else 0

    def index_of(self, action_id: str) -> int:
        """Position of ``action_id`` in the bank.

        Raises:
            KeyError: If the id is not in the bank.
        """
        try:
            return self._index[action_id]
        except KeyError:
            raise KeyError(f"action id {action_id!r} is not in the bank (ids: {list(self._index)[:10]}...).") from None

    def __contains__(self, action_id: object) -> bool:
        return action_id in self._index

    def __len__(self) -> int:
        return len(self._actions)

    def __iter__(self) -> Iterator[Action]:
        return iter(self._actions)

    def __getitem__(self, index: int) -> Action:
        return self._actions[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ActionBank):
            return NotImplemented
        return self.ids == other.ids and np.array_equal(self.embeddings, other.embeddings)

    def __hash__(self) -> int:
        return hash(self.ids)

    def __repr__(self) -> str:
        return f"ActionBank(n_actions={len(self)}, d_embed={self.d_embed}, ids={list(self.ids)[:5]}{'...' if len(self) > 5 else ''})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the actions with their embeddings (stored once per action)."""
        return {"n_actions": len(self), "d_embed": self.d_embed, "actions": [a.to_dict() for a in self._actions]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "bank") -> ActionBank:
        """Inverse of :meth:`to_dict`; ``source`` (the file) is named when ``data`` is not a bank (``DataError``)."""
        records = bank_actions(data, source=source)
        try:
            actions = [Action.from_dict(a) for a in records]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"{source} holds an action that is not a saved action ({type(exc).__name__}: {exc})."
            ) from None
        return cls(actions)


@dataclass(slots=True, eq=False)
class ActionCatalog:
    """Every action ever seen in a run: owns the id sequence and the text -> id mapping.

    The catalog is the only place that creates :class:`Action` objects during a run, so ids are
    sequential, never reused, and the same normalised text always maps to the same id (and embedding).

    Example:
        >>> from actionbank_env.core.embedders import HashingEmbedder
        >>> catalog = ActionCatalog()
        >>> first = catalog.resolve(["Big sale today", "big  SALE today"], HashingEmbedder(dim=16))
        >>> [a.id for a in first]
        ['A00000', 'A00000']
    """

    _by_key: dict[str, Action] = field(default_factory=dict)
    _next_number: int = 0

    def __len__(self) -> int:
        return len(self._by_key)

    def __eq__(self, other: object) -> bool:
        """Same id counter and the same actions (id, text, origin, iteration, embedding) under the same texts."""
        if not isinstance(other, ActionCatalog):
            return NotImplemented
        if self._next_number != other._next_number or self._by_key.keys() != other._by_key.keys():
            return False
        return all(_same_action(a, other._by_key[k]) for k, a in self._by_key.items())

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and normalize_text(text) in self._by_key

    def get(self, text: str) -> Action | None:
        """The action for ``text`` if the catalog has seen it."""
        return self._by_key.get(normalize_text(text))

    @property
    def actions(self) -> tuple[Action, ...]:
        """All actions in id order."""
        return tuple(sorted(self._by_key.values(), key=lambda a: a.id))

    def resolve(
        self,
        texts: Sequence[str],
        embedder: Embedder,
        *,
        origin: str = "user",
        iteration: int = 0,
    ) -> list[Action]:
        """Return one action per text, creating (and embedding, in one batch) the texts not seen before.

        Args:
            texts: Texts, shape (n,). Empty or overlong texts raise ``ConfigError``.
            embedder: Embeds the new texts (one call for all of them).
            origin: Origin recorded on new actions.
            iteration: Iteration recorded on new actions.

        Returns:
            Actions in the order of ``texts`` (duplicates map to the same action).
        """
        cleaned = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}.")
            ctext = clean_text(text)
            if not ctext:
                raise ConfigError(f"texts[{i}] must be a non-empty text after cleaning, got {text!r}.")
            if len(ctext) > MAX_TEXT_LENGTH:
                raise ConfigError(
                    f"texts[{i}] must be at most {MAX_TEXT_LENGTH} characters, got {len(ctext)} characters."
                )
            cleaned.append(ctext)
        keys = [normalize_text(t) for t in cleaned]
        new_keys: dict[str, str] = {}
        for key, text in zip(keys, cleaned, strict=True):
            if key not in self._by_key and key not in new_keys:
                new_keys[key] = text
        if new_keys:
            embeddings = np.asarray(embedder.embed(list(new_keys.values())), dtype=np.float32)
            for (key, text), emb in zip(new_keys.items(), embeddings, strict=True):
                self._by_key[key] = Action(
                    id=format_action_id(self._next_number),
                    text=text,
                    embedding=emb.copy(),
                    origin=origin,
                    created_iteration=iteration,
                )
                self._next_number += 1
        return [self._by_key[k] for k in keys]

    def bank(self, texts: Sequence[str], embedder: Embedder, *, origin: str = "user", iteration: int = 0) -> ActionBank:
        """Resolve ``texts`` and return them as a bank (duplicates dropped, first occurrence kept)."""
        seen: dict[str, Action] = {}
        for action in self.resolve(texts, embedder, origin=origin, iteration=iteration):
            seen.setdefault(action.id, action)
        return ActionBank(seen.values())

    def add(self, action: Action) -> None:
        """Register an existing action (e.g. loaded from disk), keeping the id sequence ahead of it."""
        key = normalize_text(action.text)
        existing = self._by_key.get(key)
        if existing is not None and existing.id != action.id:
            raise ConfigError(f"ActionCatalog already maps {action.text!r} to {existing.id}, got {action.id}.")
        self._by_key[key] = action
        number = int(action.id.lstrip("A")) if action.id.startswith("A") and action.id[1:].isdigit() else -1
        self._next_number = max(self._next_number, number + 1)

    def copy(self) -> ActionCatalog:
        """An independent catalog with the same actions and id counter."""
        return ActionCatalog(dict(self._by_key), self._next_number)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (for resuming a run)."""
        return {"next_number": self._next_number, "actions": [a.to_dict() for a in self.actions]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActionCatalog:
        """Inverse of :meth:`to_dict`."""
        catalog = cls()
        for item in data["actions"]:
            catalog.add(Action.from_dict(item))
        catalog._next_number = max(catalog._next_number, check_int("next_number", data["next_number"], low=0))
        return catalog
