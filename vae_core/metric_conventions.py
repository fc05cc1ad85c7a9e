"""Which estimator each disentanglement metric uses: a stated, selectable convention.

Two conventions, each a frozen record of every choice that changes a figure (bins, classifier and its
settings, sample sizes):

- "lab" (the default): estimators that score a perfect code ≈ 1 and a random code ≈ 0 whatever the number of
  values a factor has (2, 6 or 40), so figures can be compared across corpora and factors.
- "published": disentanglement_lib's (Locatello et al. 2019; `evaluation/metrics/*.py` and
  `config/unsupervised_study_v1/metric_configs/*.gin`), so figures can be compared with papers that use it.

`vae_core.disentanglement` takes a convention by name; summary.json records the name and this description
beside the figures, so every page and `eval --json` can say which estimator a figure used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

MetricConvention = Literal["lab", "published"]
CONVENTIONS: tuple[str, ...] = ("lab", "published")
DEFAULT_CONVENTION: MetricConvention = "lab"
CONVENTION_HELP = (
    "estimators of MIG/DCI/SAP/modularity/explicitness/BetaVAE/FactorVAE: 'lab' (default: a perfect code scores "
    "≈ 1 and a random one ≈ 0 at any number of factor values) or 'published' (disentanglement_lib's, comparable "
    "with papers)"
)


@dataclass(frozen=True, slots=True)
class Estimators:
    """Every setting of the metrics' estimators under one convention (see README, "Metric conventions")."""

    name: MetricConvention
    mig_bins: int | None  # equal-width histogram bins per dim; None: max(20, 2 × the most values of any factor)
    mi_chance_removed: bool  # MIG/modularity: MI entries within chance of 0 (a χ² test) count as 0
    modularity_weighting: Literal["mean", "information"]  # per-dim mean, or weighted by each dim's largest MI
    dci_model: Literal["forest", "gbt", "logistic"]
    dci_trees: int  # forest trees or boosting stages
    dci_min_leaf: int  # forest: 1 = fully grown (a floor on leaf size underfits factors with 20–40 values)
    dci_max_features: Literal["all", "sqrt"]  # "all": a split never has to choose among noise dims only
    sap_classifier: Literal["tree", "linear_svc"]  # per (dim, factor), on that one dim
    sap_chance_corrected: bool  # score = (acc − majority share) / (1 − majority share), floored at 0
    num_train: int  # rows the DCI/SAP/explicitness classifiers train on (at most; fewer when N is smaller)
    num_test: int  # held-out rows they are scored on (at most)
    vote_batch: int  # BetaVAE/FactorVAE: sentences per training point (a batch sharing one factor's value)
    vote_train: int  # BetaVAE/FactorVAE: training points
    vote_eval: int  # BetaVAE/FactorVAE: evaluation points
    variance_estimate: int  # FactorVAE: rows for the global variance of each dim
    prune_std: float  # FactorVAE: dims whose global standard deviation is below this take no vote
    describe: tuple[tuple[str, str], ...]  # (metric, estimator in words) for pages and eval --json

    def as_json(self) -> dict[str, Any]:
        """The convention as plain JSON (summary.json 'disentanglement' → 'convention')."""
        d = asdict(self)
        d["describe"] = dict(self.describe)
        return d


LAB = Estimators(
    name="lab",
    mig_bins=None,
    mi_chance_removed=True,
    modularity_weighting="information",
    dci_model="forest",
    dci_trees=20,
    dci_min_leaf=1,
    dci_max_features="all",
    sap_classifier="tree",
    sap_chance_corrected=True,
    num_train=4000,  # the app's 5,000-sentence cap split 80/20; more adds time, not precision
    num_test=1000,
    vote_batch=64,
    vote_train=10000,
    vote_eval=5000,
    variance_estimate=10000,
    prune_std=0.05,
    describe=(
        ("MIG", "equal-width histogram, max(20, 2 × most factor values) bins per dim (20 on the built-in corpus); "
                "MI that chance explains (χ² test, 3 s.d.) counts as 0"),
        ("DCI", "random forest, 20 fully grown trees, every split sees every dim; impurity importances"),
        ("SAP", "fully grown decision tree on one dim; held-out accuracy above the majority share, "
                "rescaled to 0–1"),
        ("modularity", "MI as for MIG; per-dim scores weighted by each dim's largest MI (dims that carry nothing "
                       "do not count)"),
        ("explicitness", "logistic regression on standardised codes; mean one-vs-rest ROC-AUC"),
        ("BetaVAE", "logistic regression on mean |z1 − z2| over 64 pairs sharing one factor; 10,000 / 5,000 "
                    "points"),
        ("FactorVAE", "majority vote of argmin of normalised variance over 64 sentences sharing one factor; "
                      "10,000 / 5,000 votes, dims with s.d. < 0.05 pruned"),
        ("sample", "classifiers fit on ≤ 4,000 rows, scored on ≤ 1,000 others"),
    ),
)

PUBLISHED = Estimators(
    name="published",
    mig_bins=20,
    mi_chance_removed=False,
    modularity_weighting="mean",
    dci_model="gbt",
    dci_trees=100,
    dci_min_leaf=1,
    dci_max_features="all",
    sap_classifier="linear_svc",
    sap_chance_corrected=False,
    num_train=10000,
    num_test=5000,
    vote_batch=64,
    vote_train=10000,
    vote_eval=5000,
    variance_estimate=10000,
    prune_std=0.05,
    describe=(
        ("MIG", "equal-width histogram, 20 bins per dim (disentanglement_lib mig.gin)"),
        ("DCI", "sklearn GradientBoostingClassifier() defaults: 100 stages, depth 3 (disentanglement_lib dci.py)"),
        ("SAP", "LinearSVC(C=0.01, class_weight='balanced') on one dim, held-out accuracy (sap_score.py, "
                "continuous_factors=False)"),
        ("modularity", "MI from the 20-bin histogram; plain mean over dims, zero-MI dims score 0 "
                       "(modularity_explicitness.py)"),
        ("explicitness", "LogisticRegression() on standardised codes; mean one-vs-rest ROC-AUC "
                         "(modularity_explicitness.py)"),
        ("BetaVAE", "LogisticRegression on mean |z1 − z2| over 64 pairs; 10,000 / 5,000 points (beta_vae.py)"),
        ("FactorVAE", "majority vote, batch 64, 10,000 / 5,000 votes, 10,000 rows for variances, prune s.d. < 0.05 "
                      "(factor_vae.py)"),
        ("sample", "classifiers fit on ≤ 10,000 rows, scored on ≤ 5,000 others (the .gin files' num_train / "
                   "num_test)"),
    ),
)

_BY_NAME = {"lab": LAB, "published": PUBLISHED}


def estimators(convention: str | Estimators = DEFAULT_CONVENTION) -> Estimators:
    """The Estimators of a convention by name (an Estimators passes through)."""
    if isinstance(convention, Estimators):
        return convention
    try:
        return _BY_NAME[str(convention)]
    except KeyError:
        raise ValueError(
            f"unknown metric convention {convention!r} (choose from {', '.join(CONVENTIONS)})"
        ) from None


__all__ = [
    "CONVENTIONS",
    "CONVENTION_HELP",
    "DEFAULT_CONVENTION",
    "Estimators",
    "LAB",
    "MetricConvention",
    "PUBLISHED",
    "estimators",
]
