"""A mixture annotator (S1, MoLLIA): several annotators aggregated into one label per item.

The members' annotation tables are the inputs. Per item, only members with status ok vote:
- majority: the label with most votes; ties broken by a per-item hash (stable under subsets,
  like every other annotator here) or, with `on_tie: invalid`, no label (status invalid);
- dawid_skene: Dawid-Skene EM over hard labels: class priors and one confusion matrix per member,
  started from the majority vote shares, so a few accurate members outweigh many noisy ones;
- mean: the mean of the members' label distributions. A member's distribution is its `probs`
  label distribution where it has one (LLM logprobs, recorded probabilities), else its vote
  shares over `samples`, else its posterior when it is itself a mixture, else its hard label as
  a one-hot vector; so with hard-label members only `mean` gives the vote shares and the
  majority label;
- learned (S1's MoLAM): a multinomial logistic regression over the members' label
  distributions, vote shares and whether they answered, fitted on a small gold set drawn from
  the dev split (`gold_size` items; their gold labels are bought through the run's ledger).
  Logistic regression rather than gradient-boosted trees: the gold set is tens of items, too
  few for trees to split m x (2K + 1) features without overfitting, and trees give piecewise
  constant, badly calibrated posteriors; the convex fit is deterministic, calibrated under the
  log loss, and its weights read as member reliabilities. Items of the gold set are marked
  (`gold_set` in answers) so that agreement scores leave them out.

Every member was asked about the item, so the mixture's cost (and tokens) per item are the sum
of its members'. The `answers` JSON keeps each member's label, the aggregated posterior, how many
members agreed with the result and the labels no answering member chose (`rejected_by_all`,
the candidates for S1's negative learning) and the mean member label distribution
(`member_mean`, S1's rule: classes whose mean member probability is at most a threshold).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal import label_probs
from llmal.contracts import make_annotations
from llmal.tasks.classification.metrics import vote_counts
from llmal.tasks.draws import learned_gold_ids, uniform_per_item  # noqa: F401 (learned_gold_ids: re-exported)

METHODS = ("majority", "dawid_skene", "mean", "learned")
NO_LABEL = -1
TIE_RTOL = 1e-9


@dataclass(frozen=True)
class MemberVotes:
    """The members' answers aligned on the union of their item ids."""
    ids: list[str]
    members: list[str]
    labels: np.ndarray        # (n, m) int64: label index, NO_LABEL where the member gave none
    status: np.ndarray        # (n, m) str: ok | invalid | failed | missing (no row for the item)
    cost_usd: np.ndarray      # (n,) summed over members
    tokens: dict[str, np.ndarray]  # input/output/cached tokens, (n,) summed over members
    soft: np.ndarray          # (n, m, K) a member's label distribution (NaN where it gave none)
    votes: np.ndarray | None = None  # (n, m, K) a member's vote shares over its samples (NaN: none)


@dataclass(frozen=True)
class DawidSkeneResult:
    posterior: np.ndarray     # (n, K); rows of items without votes are NaN
    priors: np.ndarray        # (K,)
    confusion: np.ndarray     # (m, K, K): confusion[j, true, given]
    n_iter: int
    converged: bool


def member_votes(tables: Mapping[str, pd.DataFrame], label_names: Sequence[str]) -> MemberVotes:
    """Align the members' tables (name -> annotation table) on the union of their ids."""
    members = list(tables)
    ids: list[str] = []
    seen: set[str] = set()
    for df in tables.values():
        for item_id in df["id"].astype(str):
            if item_id not in seen:
                seen.add(item_id)
                ids.append(item_id)
    n, m, k = len(ids), len(members), len(label_names)
    labels = np.full((n, m), NO_LABEL, dtype=np.int64)
    status = np.full((n, m), "missing", dtype=object)
    soft = np.full((n, m, k), np.nan)
    shares = np.full((n, m, k), np.nan)
    cost = np.zeros(n)
    tokens = {c: np.zeros(n, dtype=np.int64) for c in ("input_tokens", "output_tokens", "cached_tokens")}
    pos = pd.Index(ids)
    for j, (name, df) in enumerate(tables.items()):
        rows = pos.get_indexer(df["id"].astype(str))
        st = df["status"].astype(str).to_numpy()
        status[rows, j] = st
        ok = st == "ok"
        given = df["label"].to_numpy(dtype="float64", na_value=np.nan)
        bad = ok & ((given < 0) | (given >= k) | np.isnan(given))
        if bad.any():
            raise ValueError(f"mixture member {name!r}: id {df['id'].iloc[int(np.argmax(bad))]!r} has label "
                             f"{given[bad][0]} outside the label set {list(label_names)}")
        labels[rows[ok], j] = given[ok].astype(np.int64)
        soft[rows[ok], j] = np.eye(k)[given[ok].astype(np.int64)]
        for r, answers in zip(rows[ok], df.loc[ok, "answers"].astype(str)):
            if '"posterior"' in answers:
                dist = _posterior_of(answers, label_names)
                if dist is not None:
                    soft[r, j] = dist
        if "probs" in df.columns:
            cells = df.loc[ok, "probs"].astype(str).tolist()
            label_dist = label_probs.label_matrix(cells, label_names, "label")
            vote_dist = label_probs.label_matrix(cells, label_names, "votes")
            shares[rows[ok], j] = vote_dist
            for dist in (vote_dist, label_dist):       # recorded probabilities first
                known = ~np.isnan(dist[:, 0])
                soft[rows[ok][known], j] = dist[known]
        cost[rows] += pd.to_numeric(df["cost_usd"], errors="coerce").fillna(0.0).to_numpy()
        for col, acc in tokens.items():
            acc[rows] += pd.to_numeric(df[col], errors="coerce").fillna(0).to_numpy(dtype=np.int64)
    return MemberVotes(ids, members, labels, status, cost, tokens, soft, shares)


def _posterior_of(answers: str, label_names: Sequence[str]) -> np.ndarray | None:
    """A mixture member's posterior from its answers JSON (None when it has none)."""
    try:
        post = json.loads(answers).get("posterior")
    except (json.JSONDecodeError, AttributeError):
        return None
    if not isinstance(post, dict):
        return None
    dist = np.array([float(post.get(name, 0.0)) for name in label_names])
    total = dist.sum()
    return dist / total if total > 0 else None


def majority_posterior(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Vote shares per item; NaN rows where no member voted."""
    counts = vote_counts(labels, n_classes)
    total = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, counts / np.where(total > 0, total, 1), np.nan)


def mean_posterior(soft: np.ndarray) -> np.ndarray:
    """Mean of the members' label distributions over those that gave one; NaN rows otherwise."""
    given = ~np.isnan(soft[..., 0])
    total = np.where(given[..., None], soft, 0.0).sum(axis=1)
    n = given.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.where(n > 0, n, 1), np.nan)


def dawid_skene(labels: np.ndarray, n_classes: int, *, max_iter: int = 100, tol: float = 1e-6,
                smoothing: float = 0.01) -> DawidSkeneResult:
    """Dawid & Skene (1979) EM for (n items, m annotators) hard labels with NO_LABEL for missing.

    M-step: class priors and per-annotator confusion matrices from the current posteriors, with a
    small Dirichlet `smoothing` pseudo-count so no probability is exactly 0. E-step: posterior
    of each item's true class given all its labels. Starts from majority vote shares; stops after
    `max_iter` iterations or when no posterior entry moves more than `tol`.
    """
    n, m = labels.shape
    k = n_classes
    posterior = np.full((n, k), np.nan)
    voted = (labels != NO_LABEL).any(axis=1)
    if not voted.any():
        return DawidSkeneResult(posterior, np.full(k, 1.0 / k), np.full((m, k, k), 1.0 / k), 0, True)
    obs = np.zeros((int(voted.sum()), m, k))                     # one-hot given labels
    lab = labels[voted]
    rows, cols = np.nonzero(lab != NO_LABEL)
    obs[rows, cols, lab[rows, cols]] = 1.0
    t = majority_posterior(lab, k)
    converged, it = False, 0
    priors = confusion = None
    for it in range(1, max_iter + 1):
        priors = (t.sum(axis=0) + smoothing) / (t.shape[0] + k * smoothing)
        counts = np.einsum("ik,ijl->jkl", t, obs) + smoothing     # (m, true, given)
        confusion = counts / counts.sum(axis=2, keepdims=True)
        log_t = np.log(priors)[None, :] + np.einsum("ijl,jkl->ik", obs, np.log(confusion))
        log_t -= log_t.max(axis=1, keepdims=True)
        new_t = np.exp(log_t)
        new_t /= new_t.sum(axis=1, keepdims=True)
        delta = float(np.abs(new_t - t).max())
        t = new_t
        if delta < tol:
            converged = True
            break
    posterior[voted] = t
    return DawidSkeneResult(posterior, priors, confusion, it, converged)


def learned_features(votes: MemberVotes) -> np.ndarray:
    """(n, m * (2K + 1)) features: per member its label distribution, its vote shares (its label
    distribution without samples) and whether it answered; zeros where it gave no label."""
    answered = ~np.isnan(votes.soft[..., 0])
    dist = np.where(answered[..., None], votes.soft, 0.0)
    shares = votes.votes if votes.votes is not None else np.full_like(votes.soft, np.nan)
    shares = np.where(np.isnan(shares), dist, shares)
    n = len(votes.ids)
    return np.concatenate([dist.reshape(n, -1), shares.reshape(n, -1),
                           answered.astype(float)], axis=1)


def learned_posterior(votes: MemberVotes, gold: Mapping[str, int], n_classes: int,
                      spec: Mapping[str, Any], log: Callable[[str], None] = print) -> np.ndarray:
    """Posterior of a multinomial logistic regression fitted on the gold items the members
    answered (see the module doc); majority vote shares when the gold set holds fewer than two
    classes. NaN rows for items no member labelled."""
    from sklearn.linear_model import LogisticRegression

    X = learned_features(votes)
    voted = (votes.labels != NO_LABEL).any(axis=1)
    index = {i: n for n, i in enumerate(votes.ids)}
    train = [(index[i], int(y)) for i, y in gold.items() if i in index and voted[index[i]] and 0 <= int(y) < n_classes]
    classes = sorted({y for _, y in train})
    if len(classes) < 2:
        log(f"learned: {len(train)} gold item(s) answered by the members, {len(classes)} class(es); "
            "falling back to majority vote")
        return majority_posterior(votes.labels, n_classes)
    rows, y = zip(*train)
    model = LogisticRegression(C=float(spec.get("C", 1.0)), max_iter=2000)
    model.fit(X[list(rows)], np.array(y))
    posterior = np.full((len(votes.ids), n_classes), np.nan)
    posterior[voted] = 0.0
    posterior[np.ix_(voted, model.classes_)] = model.predict_proba(X[voted])
    log(f"learned: logistic regression on {len(train)} gold items ({len(classes)} classes), "
        f"training accuracy {float(np.mean(model.predict(X[list(rows)]) == np.array(y))):.3f}")
    return posterior


def pick_labels(posterior: np.ndarray, ids: Sequence[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Argmax label per item, ties broken by a per-item hash; (labels, tied). NO_LABEL for NaN rows."""
    n = posterior.shape[0]
    labels = np.full(n, NO_LABEL, dtype=np.int64)
    tied = np.zeros(n, dtype=bool)
    valid = ~np.isnan(posterior).any(axis=1) if n else np.zeros(0, dtype=bool)
    if not valid.any():
        return labels, tied
    u = uniform_per_item(ids, seed, "mixture-tie")[valid]
    post = posterior[valid]
    best = np.isclose(post, post.max(axis=1, keepdims=True), rtol=TIE_RTOL, atol=0.0)
    n_best = best.sum(axis=1)
    # the k-th of the tied classes (in class order), k drawn by the item's hash
    k = (u * n_best).astype(np.int64)
    rank = np.cumsum(best, axis=1) - 1
    labels[valid] = np.argmax(best & (rank == k[:, None]), axis=1)
    tied[valid] = n_best > 1
    return labels, tied


def aggregate_posterior(votes: MemberVotes, spec: Mapping[str, Any], n_classes: int,
                        log: Callable[[str], None] = print,
                        gold: Mapping[str, int] | None = None) -> np.ndarray:
    method = spec.get("method", "majority")
    if method == "learned":
        if gold is None:
            raise ValueError("mixture method learned needs the gold labels of its gold set")
        return learned_posterior(votes, gold, n_classes, spec, log)
    if method == "majority":
        return majority_posterior(votes.labels, n_classes)
    if method == "mean":
        return mean_posterior(votes.soft)
    if method == "dawid_skene":
        ds = dawid_skene(votes.labels, n_classes, max_iter=int(spec.get("max_iter", 100)),
                         tol=float(spec.get("tol", 1e-6)))
        accuracy = np.einsum("k,jkk->j", ds.priors, ds.confusion)
        log(f"dawid_skene: {ds.n_iter} iterations ({'converged' if ds.converged else 'max_iter reached'}); "
            "estimated member accuracy " + ", ".join(f"{m}={a:.3f}" for m, a in zip(votes.members, accuracy)))
        return ds.posterior
    raise ValueError(f"unknown mixture method {method!r} (one of {METHODS})")


def annotate_mixture(tables: Mapping[str, pd.DataFrame], spec: Mapping[str, Any],
                     label_names: Sequence[str], log: Callable[[str], None] = print,
                     gold: Mapping[str, int] | None = None) -> pd.DataFrame:
    """The mixture's annotation table from its members' tables (name -> table, in member order).

    `gold`: id -> gold label of a `learned` mixture's gold set (dev items only)."""
    names = list(label_names)
    k = len(names)
    method = str(spec.get("method", "majority"))
    votes = member_votes(tables, names)
    posterior = aggregate_posterior(votes, spec, k, log, gold=gold)
    member_mean = mean_posterior(votes.soft)
    gold_set = set(gold or {})
    labels, tied = pick_labels(posterior, votes.ids, int(spec.get("seed", 0)))
    n_votes = (votes.labels != NO_LABEL).sum(axis=1)
    enough = n_votes >= int(spec.get("min_votes", 1))
    tie_invalid = tied & (spec.get("on_tie", "hash") == "invalid")
    status = np.where(~enough, "failed", np.where(tie_invalid, "invalid", "ok"))
    final = np.where(status == "ok", labels, NO_LABEL)
    answers = []
    for i in range(len(votes.ids)):
        row = votes.labels[i]
        given = row[row != NO_LABEL]
        answers.append(json.dumps({
            "method": method,
            "members": {m: (names[lab] if lab != NO_LABEL else None) for m, lab in zip(votes.members, row)},
            "member_status": {m: str(s) for m, s in zip(votes.members, votes.status[i])},
            "posterior": (None if np.isnan(posterior[i]).any()
                          else {name: round(float(p), 6) for name, p in zip(names, posterior[i])}),
            "n_votes": int(n_votes[i]),
            "n_agree": int((given == final[i]).sum()) if final[i] != NO_LABEL else 0,
            "tie": bool(tied[i]),
            "rejected_by_all": [names[c] for c in range(k) if given.size and not (given == c).any()],
            "member_mean": (None if np.isnan(member_mean[i]).any()
                            else {name: round(float(p), 6) for name, p in zip(names, member_mean[i])}),
            **({"gold_set": True} if votes.ids[i] in gold_set else {}),
        }, ensure_ascii=False, sort_keys=True))
    return make_annotations({
        "id": votes.ids,
        "label": pd.array(np.where(final == NO_LABEL, None, final).tolist(), dtype="Int64"),
        "status": status,
        "answers": answers,
        "probs": [{} if np.isnan(posterior[i]).any() else {"label": label_probs.as_mapping(posterior[i], names)}
                  for i in range(len(votes.ids))],
        "raw": "",
        **votes.tokens,
        "cost_usd": votes.cost_usd,
        "model": mixture_model_name(method, votes.members),
    })


def mixture_model_name(method: str, members: Sequence[str]) -> str:
    return f"mixture:{method}({','.join(members)})"
