"""One-iteration learnability lab: how well does each designer variant choose from one pool?

For each world seed and logged-user count, the lab runs the first campaign exactly as ``actionbank
simulate`` does (same seed streams: world, episode, designer), then asks every designer variant to propose
the next bank from that one log with a generator in the same state (so all variants choose from the same
pool), and scores the proposals against the ground truth on fresh evaluation users:

- ``captured``: improvement captured, (V_new - V_old) / (V_oracle - V_old), the oracle being greedy on the
  truth over the same pool (as the simulation's evaluation does);
- ``auc`` / ``ceiling`` / ``user_only`` / ``mean_ratio``: the reward model's fidelity on evaluation users x
  never-served pool texts (see :func:`actionbank_env.evaluation.unseen_candidate_fidelity`).

Numbers over world seeds are aggregated as ratios of means (captured) and means (fidelity). This is the fast
development loop of issue 16; the full multi-iteration measurement is ``actionbank benchmark``.

Run: ``python -m benchmarks.designer_lab --embedder minilm --seeds 101-105 --users 1000,5000``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from actionbank_env.core.campaign import CampaignConfig
from actionbank_env.core.copywriting import OfflineCopywriter
from actionbank_env.core.world import World, WorldConfig
from actionbank_env.envs.bank_design import MAX_BANK_SLOTS, BankDesignConfig, BankDesignEnv
from actionbank_env.protocols import DesignerContext
from actionbank_env.registry import make_designer

#: name -> (designer, designer params).
Variant = tuple[str, dict[str, Any]]


def designer_rng(case: Case) -> np.random.Generator:
    """A generator of the case's designer stream in its initial state.

    A fresh SeedSequence each time: ``Generator.spawn`` advances the SeedSequence it was built from, so two
    variants built from one shared sequence would draw different pools.
    """
    seq = case.designer_seq
    return np.random.default_rng(np.random.SeedSequence(seq.entropy, spawn_key=seq.spawn_key))


@dataclass
class Case:
    """One world seed x logged-user count after the first campaign."""

    world: World
    env: BankDesignEnv
    info: dict[str, Any]
    designer_seq: np.random.SeedSequence
    eval_users: np.ndarray
    n_users: int
    world_seed: int


def build_case(
    world_seed: int,
    n_users: int,
    *,
    embedder: str = "hashing",
    agent_params: dict[str, Any] | None = None,
    world_params: dict[str, Any] | None = None,
) -> Case:
    """The state after the first campaign (seed streams as in :func:`actionbank_env.experiment.run_simulation`)."""
    world = World.build(WorldConfig(world_seed=world_seed, embedder=embedder, **(world_params or {})))
    env_seq, designer_seq, eval_seq = np.random.SeedSequence(world_seed).spawn(3)
    eval_users = world.sample_users(2000, rng=np.random.default_rng(eval_seq)).features
    env = BankDesignEnv(
        BankDesignConfig(
            campaign=CampaignConfig(users_per_iteration=n_users),
            n_iterations=2,
            max_bank_size=MAX_BANK_SLOTS,
            company_params=agent_params or {},
            first_iteration=1,
        ),
        world=world,
    )
    _, info = env.reset(seed=int(env_seq.generate_state(1)[0]))
    # The runner's designer stream for iteration 1 (``designer_seq.spawn(iterations)[0]``: spawn is positional).
    return Case(world, env, info, designer_seq.spawn(1)[0], eval_users, n_users, world_seed)


def run_variant(case: Case, name: str, designer: str, params: dict[str, Any]) -> dict[str, Any]:
    """Propose with one variant and score the proposal against the truth."""
    from actionbank_env.evaluation import evaluate_iteration

    world = case.world
    des = make_designer(designer, world, rng=np.random.default_rng(0), **params)
    start = time.perf_counter()
    bank = case.info["bank"]
    proposal = des.propose(case.info["history"], bank, rng=designer_rng(case))
    seconds = time.perf_counter() - start
    new_bank = case.info["catalog"].bank(proposal.texts, world.embedder) if proposal.texts else bank
    # The runner's own evaluation (same oracle over the proposal's pool, same fidelity measures).
    rec = evaluate_iteration(
        world.ground_truth, case.eval_users, bank, new_bank, case.info, proposal, rng=np.random.default_rng(1)
    ).record
    row: dict[str, Any] = {
        "variant": name,
        "world_seed": case.world_seed,
        "users": case.n_users,
        "v_old": rec["bank_value"],
        "v_new": rec["new_bank_value"],
        "v_oracle": rec["oracle_bank_value"],
        "captured": rec["improvement_captured"],
        "seconds": seconds,
        "predicted_gain": (proposal.diagnostics.get("expected_value_new") or 0.0)
        - (proposal.diagnostics.get("expected_value_old") or 0.0),
        "n_new": len(proposal.texts) - len(bank),
    }
    fid = rec.get("unseen_candidate_fidelity")
    if fid is not None:
        row.update(
            auc=fid["auc"],
            ceiling=fid["auc_ceiling"],
            user_only=fid["user_only_auc"],
            mean_ratio=fid["mean_ratio"],
            ece=fid["ece"],
            within=fid["within_user_spearman"],
        )
    return row


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (variant, users): ratio of means of the improvement captured and mean fidelity numbers."""
    out = []
    keys = sorted({(r["variant"], r["users"]) for r in rows}, key=lambda k: (k[1], k[0]))
    for variant, users in keys:
        sub = [r for r in rows if r["variant"] == variant and r["users"] == users]
        d_new = np.array([r["v_new"] - r["v_old"] for r in sub])
        d_orc = np.array([r["v_oracle"] - r["v_old"] for r in sub])
        row = {
            "variant": variant,
            "users": users,
            "n": len(sub),
            "captured": float(d_new.sum() / d_orc.sum()),
            "dv_mean": float(d_new.mean()),
            "seconds": float(np.mean([r["seconds"] for r in sub])),
        }
        # Paired by world seed against the random designer on the same pool: mean and 95 % t half-width.
        base = {r["world_seed"]: r["v_new"] for r in rows if r["variant"] == "random" and r["users"] == users}
        diffs = np.array([r["v_new"] - base[r["world_seed"]] for r in sub if r["world_seed"] in base])
        if variant != "random" and diffs.size >= 2:
            from scipy.stats import t as student_t

            half = float(student_t.ppf(0.975, diffs.size - 1) * diffs.std(ddof=1) / np.sqrt(diffs.size))
            row["vs_random"] = f"{diffs.mean():+.4f} ± {half:.4f}"
        for key in ("auc", "ceiling", "user_only", "within", "mean_ratio", "ece"):
            vals = [r[key] for r in sub if key in r]
            if vals:
                row[key] = float(np.mean(vals))
        out.append(row)
    return out


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    """A plain table."""
    cols = [
        "variant",
        "users",
        "n",
        "captured",
        "dv_mean",
        "vs_random",
        "auc",
        "ceiling",
        "user_only",
        "within",
        "mean_ratio",
        "ece",
        "seconds",
    ]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            cells.append(f"{v:.4f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


DEFAULT_VARIANTS: dict[str, Variant] = {
    "random": ("random", {}),
    "diverse": ("diverse", {}),
    "lightgbm": ("generative", {"reward_model": "lightgbm"}),
    "linear": ("generative", {"reward_model": "linear"}),
    "bilinear_cv": ("generative", {"reward_model": "bayesian_bilinear"}),
    "bilinear_ev": (
        "generative",
        {"reward_model": "bayesian_bilinear", "reward_model_params": {"prior_selection": "evidence"}},
    ),
    "bilinear_ev_map": (
        "generative",
        {
            "reward_model": "bayesian_bilinear",
            "reward_model_params": {"prior_selection": "evidence", "moderated": False},
        },
    ),
    "bilinear_ucb": (
        "generative",
        {"reward_model": "bayesian_bilinear", "use_uncertainty": True, "uncertainty_weight": 1.0},
    ),
    "bilinear_div30": ("generative", {"reward_model": "bayesian_bilinear", "diversity_weight": 0.3}),
    "bilinear_div50": ("generative", {"reward_model": "bayesian_bilinear", "diversity_weight": 0.5}),
    "bilinear_noscreen": ("generative", {"reward_model": "bayesian_bilinear", "screen_shortlist": None}),
    "bilinear_map": (
        "generative",
        {"reward_model": "bayesian_bilinear", "reward_model_params": {"moderated": False}},
    ),
    "bilinear_ref": ("generative", {"reward_model": "bayesian_bilinear", "fit_on_reference_pca": True}),
    "bilinear_refonly": (
        "generative",
        {"reward_model": "bayesian_bilinear", "fit_on_reference_pca": True, "fit_on_pool_pca": False},
    ),
    "lightgbm_ref": ("generative", {"reward_model": "lightgbm", "fit_on_reference_pca": True}),
    "bilinear_div100": ("generative", {"reward_model": "bayesian_bilinear", "diversity_weight": 1.0}),
    "bilinear_div300": ("generative", {"reward_model": "bayesian_bilinear", "diversity_weight": 3.0}),
    "bilinear_map_div50": (
        "generative",
        {"reward_model": "bayesian_bilinear", "reward_model_params": {"moderated": False}, "diversity_weight": 0.5},
    ),
    "lightgbm_div50": ("generative", {"reward_model": "lightgbm", "diversity_weight": 0.5}),
    "lightgbm_div100": ("generative", {"reward_model": "lightgbm", "diversity_weight": 1.0}),
    "lightgbm_div30": ("generative", {"reward_model": "lightgbm", "diversity_weight": 0.3}),
    "bilinear_sp1": (
        "generative",
        {"reward_model": "bayesian_bilinear", "reward_model_params": {"spectrum_power": 1.0}},
    ),
    "bilinear_sp0": (
        "generative",
        {"reward_model": "bayesian_bilinear", "reward_model_params": {"spectrum_power": 0.0}},
    ),
    "bilinear_sp1_refonly": (
        "generative",
        {
            "reward_model": "bayesian_bilinear",
            "reward_model_params": {"spectrum_power": 1.0},
            "fit_on_reference_pca": True,
            "fit_on_pool_pca": False,
        },
    ),
    "bilinear_pc32": (
        "generative",
        {"reward_model": "bayesian_bilinear", "reward_model_params": {"embedding_components": 32}},
    ),
    "bilinear_pc48": (
        "generative",
        {"reward_model": "bayesian_bilinear", "reward_model_params": {"embedding_components": 48}},
    ),
    "bilinear_pc32_sp1": (
        "generative",
        {"reward_model": "bayesian_bilinear", "reward_model_params": {"embedding_components": 32, "spectrum_power": 1.0}},
    ),
    "reference": ("reference", {}),
    "ref_true_user": ("reference", {"true_action": False}),
    "ref_true_action": ("reference", {"true_user": False}),
    "ref_company": ("reference", {"true_user": False, "true_action": False}),
}


def truth_design(truth: Any, users: np.ndarray, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ground truth's functional form without its weights: (user basis (n, p), action basis (m, q))."""
    if hasattr(truth, "design"):
        return truth.design(users, embeddings)
    # Mixture of experts before the world card: gate-weighted centred features and the whitened projection.
    gated = truth.gate(users)[:, :, None] * (users - truth._user_mean)[:, None, :]
    return gated.reshape(users.shape[0], -1), truth._projection(np.asarray(embeddings, dtype=np.float64))


def run_reference(case: Case, name: str, true_user: bool = True, true_action: bool = True) -> dict[str, Any]:
    """The evaluation-only well-specified reference: the truth's own features, weights fitted on the same log.

    A Bayesian bilinear logistic fit (prior sds by evidence) on [1, user basis] x [1, action basis], then
    greedy selection of its posterior-mean probabilities over the same pool and representative users.
    """
    from actionbank_env.core.coverage import GreedySelector
    from actionbank_env.evaluation import improvement_captured
    from optimizers._common import ActionMemory, GenerativeConfig, training_rows
    from optimizers.generative import draw_pool
    from optimizers.reward_models._features import sigmoid
    from optimizers.reward_models.bilinear import _Design, evidence_sds

    world, truth, bank = case.world, case.world.ground_truth, case.info["bank"]
    context = DesignerContext(world.embedder, OfflineCopywriter(), world.d_user, world.feature_names)
    cfg = GenerativeConfig()
    memory = ActionMemory()
    memory.remember(bank)
    pool_rng, user_rng, _ = designer_rng(case).spawn(3)
    draw = draw_pool(context, cfg, memory, case.info["history"], bank, pool_rng=pool_rng, user_rng=user_rng)
    rows = training_rows(case.info["history"], memory)
    used, action = np.unique(rows.action_index, return_inverse=True)
    unlabelled = np.vstack([draw.embeddings, bank.embeddings]).astype(np.float64)
    emb_mean = unlabelled.mean(axis=0)
    _, sing, vt = np.linalg.svd(unlabelled - emb_mean, full_matrices=False)
    comp = vt[:16].T  # company side: the pool's top principal components, variance kept

    def design(users: np.ndarray, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u, a = truth_design(truth, users, emb)
        if not true_user:
            u = users - 0.5
        if not true_action:
            a = (np.asarray(emb, dtype=np.float64) - emb_mean) @ comp
        return u, a

    ub, ab = design(rows.users, rows.action_embeddings[used])
    u_scale = ub.std(axis=0) + 1e-9
    a_scale = float(np.sqrt((design(rows.users[:1], draw.embeddings)[1] ** 2).sum(axis=1).mean()))
    phi = np.hstack([np.ones((ub.shape[0], 1)), ub / u_scale])
    psi = np.hstack([np.ones((ab.shape[0], 1)), ab / a_scale])
    log_design = _Design(phi, psi, action.reshape(-1), rows.clicks, np.ones(rows.clicks.size))
    init = np.zeros((phi.shape[1], psi.shape[1]))
    rate = rows.clicks.mean()
    init[0, 0] = np.log(rate / (1 - rate))
    sds = {"intercept": 10.0, "user": 1.0, "action": 0.5, "interaction": 0.5}
    sds, _, m = evidence_sds(log_design, sds, init, blocks=("user", "action", "interaction"))

    def probs(users: np.ndarray, emb: np.ndarray) -> np.ndarray:
        u, a = design(users, emb)
        p = np.hstack([np.ones((u.shape[0], 1)), u / u_scale])
        q = np.hstack([np.ones((a.shape[0], 1)), a / a_scale])
        return sigmoid(p @ m @ q.T)

    users = draw.users
    base_hat = probs(users, bank.embeddings).max(axis=1)
    picks = (
        GreedySelector()
        .run(probs(users, draw.embeddings), cfg.action_bank_size, base=base_hat, user_weights=draw.user_weights)
        .indices
    )
    ev = case.eval_users
    base = truth.click_prob(ev, bank.embeddings).max(axis=1)
    pool_true = truth.click_prob(ev, draw.embeddings)
    oracle = GreedySelector().run(pool_true, cfg.action_bank_size, base=base).indices
    v_old = float(base.mean())
    v_new = float(np.maximum(base, pool_true[:, picks].max(axis=1)).mean())
    v_oracle = float(np.maximum(base, pool_true[:, oracle].max(axis=1)).mean())
    return {
        "variant": name,
        "world_seed": case.world_seed,
        "users": case.n_users,
        "v_old": v_old,
        "v_new": v_new,
        "v_oracle": v_oracle,
        "captured": improvement_captured(v_new, v_old, v_oracle),
        "seconds": 0.0,
        "n_new": int(picks.size),
        "reference_sds": sds,
    }


def main(
    argv: Sequence[str] | None = None,
    variants: dict[str, Variant] | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Command line: ``--embedder``, ``--seeds 101-105``, ``--users 1000,5000``, ``--variants a,b``."""
    from actionbank_env.sweep import parse_seeds

    parser = argparse.ArgumentParser(prog="python -m benchmarks.designer_lab")
    parser.add_argument("--embedder", default="hashing")
    parser.add_argument("--seeds", default="101-105")
    parser.add_argument("--users", default="1000")
    parser.add_argument("--variants", default=None, help="comma-separated names (default: all)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    table = variants or DEFAULT_VARIANTS
    names = list(table) if args.variants is None else args.variants.split(",")
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # as actionbank simulate runs (threads=1): BLAS threads only fight on shared cores
    rows = []
    for n_users in (int(u) for u in args.users.split(",")):
        for seed in parse_seeds(args.seeds):
            case = build_case(seed, n_users, embedder=args.embedder)
            for name in names:
                designer, params = table[name]
                if designer == "reference":
                    row = run_reference(case, name, **params)
                else:
                    row = run_variant(case, name, designer, params)
                rows.append(row)
                if callback:
                    callback(row)
                print(json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}), flush=True)
    summary = summarize(rows)
    print(format_rows(summary))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"rows": rows, "summary": summary}, handle, indent=1)
    return rows


if __name__ == "__main__":
    main()
