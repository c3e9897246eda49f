"""Commands and error paths that need no model import no backend: a logreg fit, `info`, and
the refusal of a bad argument or a missing image run without TensorFlow, Keras, JAX or PyTorch
(the backends' imports are most of a short command's time). Checked in a fresh process by what
``sys.modules`` holds after each command, not by timings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bottleneck.cache import Cache

pytest_plugins = ["tests.heads_fixtures"]

ROOT = Path(__file__).parents[2]
BACKENDS = ("tensorflow", "keras", "jax", "torch")
# what a scikit-learn fit needs no more of: a plotting library, pandas (scikit-learn imports it
# only to have it), skops' listing of every estimator (it imports all of scikit-learn), the
# scipy packages scikit-learn imports without a head's fit using them (deferred to first use,
# see bottleneck.heads.sklearn_import), YAML (for --param and --params only)
SLOW = ("matplotlib", "pandas", "sklearn.gaussian_process", "scipy.stats", "scipy.interpolate",
        "scipy.integrate", "yaml")

SCRIPT = f"""
import json, sys
from click.testing import CliRunner
from bottleneck.cli import main
report = []
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(main, args)
    report.append({{"args": args, "code": result.exit_code, "stderr": result.stderr,
                   "loaded": [m for m in {BACKENDS!r} if m in sys.modules],
                   "slow": [m for m in {SLOW!r} if m in sys.modules],
                   "sklearn": "sklearn" in sys.modules}})
print(json.dumps(report))
"""


def run_commands(commands: list[list[str]], cwd: Path) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("KERAS_BACKEND", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(commands)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_commands_that_need_no_model_import_no_backend(feature_cache: Cache, tmp_path: Path):
    cache = str(feature_cache.root)
    model = str(tmp_path / "logreg")
    commands = [
        ["info", cache],
        ["fit", cache, "--head", "logreg", "-o", model],
        ["fit", cache, "--head", "no-such-head", "-o", str(tmp_path / "x")],
        ["extract", cache, "-b", "no_such_net", "-o", str(tmp_path / "c")],
        ["extract", cache, "-b", "vgg16", "--pooling", "median", "-o", str(tmp_path / "c")],
        ["predict", model, str(tmp_path / "missing.jpg")],
        ["heads"],
    ]
    report = run_commands(commands, tmp_path)
    assert [r["code"] for r in report] == [0, 0, 2, 2, 2, 2, 0], report
    for entry in report:
        assert entry["loaded"] == [] and entry["slow"] == [], entry
    assert "unknown backbone 'no_such_net'" in report[3]["stderr"]
    assert report[5]["stderr"].strip() == \
        f"error: {tmp_path / 'missing.jpg'} could not be read as an image: no such file or folder."
    head = json.loads((tmp_path / "logreg" / "head.json").read_text())
    from importlib.metadata import version

    assert head["versions"]["keras"] == version("keras")
    assert not (tmp_path / "c").exists() and not (tmp_path / "x").exists()


def test_refusing_inputs_or_a_head_name_loads_no_model(feature_cache: Cache,
                                                       tmp_path: Path) -> None:
    """`predict` on files that do not exist, and `fit` with a head that does not exist, are
    refused before any head is loaded: scikit-learn is not even imported."""
    model = str(tmp_path / "logreg")
    assert run_commands([["fit", str(feature_cache.root), "--head", "logreg", "-o", model]],
                        tmp_path)[0]["code"] == 0
    refused = run_commands([["predict", model, str(tmp_path / "missing.jpg")],
                            ["fit", model, "--head", "knn", "-o", str(tmp_path / "x")]], tmp_path)
    assert [r["code"] for r in refused] == [2, 2], refused
    assert "no such file or folder" in refused[0]["stderr"]
    assert "unknown head 'knn'; choose one of: logreg, linear-svm" in refused[1]["stderr"]
    for entry in refused:
        assert not entry["sklearn"] and entry["loaded"] == [], entry


def test_python_dash_m_bottleneck_is_the_command_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bottleneck", "fit", "--help"], cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: bottleneck fit [OPTIONS] CACHE")


# Results of scipy.stats, scipy.interpolate, scipy.integrate and skops, used directly and through
# the scikit-learn code that holds their deferred names (gmean, rankdata, spearmanr, chi2,
# BSpline, trapezoid, the `stats` module of sklearn.preprocessing), as a JSON line. skops'
# estimator list comes first: filling it imports all of scikit-learn, and scipy.stats with it.
USES = """
import json, sys, types
import skops.io._general as general
estimators = sorted(general.SKLEARN_ESTIMATOR_TYPE_NAMES)
import numpy as np
import scipy.stats
from scipy import stats
from scipy.stats import gmean
import scipy.stats.mstats
from scipy.interpolate import interp1d
from scipy.integrate import quad
import sklearn._loss.link
from sklearn.covariance import MinCovDet
from sklearn.isotonic import IsotonicRegression, check_increasing
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import auc
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import FunctionTransformer, PowerTransformer, SplineTransformer
import skops.io
import skops.io._trusted_types as trusted

rng = np.random.default_rng(0)
X = rng.normal(size=(40, 3))
y = (X[:, 0] > 0).astype(int)
search = GridSearchCV(LogisticRegression(), {"C": [0.01, 1.0, 100.0]}, cv=2).fit(X, y)
raw = rng.normal(size=(4, 3))
link = sklearn._loss.link.MultinomialLogit()
ufunc = FunctionTransformer(scipy.special.expit)
values = {
    "real": [type(sys.modules[name]) is types.ModuleType for name in
             ("scipy.stats", "scipy.interpolate", "scipy.integrate")] + [stats is scipy.stats],
    "stats": [float(scipy.stats.norm.cdf(1.0)), float(gmean([1.0, 2.0, 4.0])),
              float(stats.chi2.ppf(0.5, 3)), scipy.stats.mstats.mquantiles([1, 2, 3, 4]).tolist()],
    "interpolate": [float(interp1d([0.0, 1.0], [0.0, 2.0])(0.25)), quad(lambda x: x, 0, 1)[0]],
    "gmean": link.symmetrize_raw_prediction(raw).tolist(),
    "rankdata": search.cv_results_["rank_test_score"].tolist(),
    "spearmanr": [bool(check_increasing([1, 2, 3, 4], [1, 3, 2, 4]))],
    "isotonic": IsotonicRegression().fit([1, 2, 3, 4], [1, 3, 2, 4]).predict([2.5]).tolist(),
    "chi2": MinCovDet(random_state=0).fit(X).location_.tolist(),
    "bspline": SplineTransformer(n_knots=3).fit_transform(X[:3]).tolist(),
    "trapezoid": [float(auc([0.0, 1.0, 2.0], [0.0, 1.0, 0.0]))],
    "boxcox": PowerTransformer(method="box-cox").fit_transform(np.abs(X) + 1)[:2].tolist(),
    "skops": [skops.io.get_untrusted_types(data=skops.io.dumps(ufunc)),
              skops.io.loads(skops.io.dumps(search.best_estimator_)).predict(X[:5]).tolist(),
              len(trusted.SCIPY_UFUNC_TYPE_NAMES) > 100,
              len(set(trusted.SCIPY_UFUNC_TYPE_NAMES)) == len(trusted.SCIPY_UFUNC_TYPE_NAMES)],
    "ufuncs": sorted(trusted.SCIPY_UFUNC_TYPE_NAMES),
    "estimators": ["sklearn.ensemble._forest.RandomForestClassifier" in estimators, estimators],
}
print(json.dumps(values))
"""


def test_what_a_fit_defers_works_as_usual_afterwards(tmp_path: Path) -> None:
    """After a logreg fit (which loads none of scipy.stats, scipy.interpolate, scipy.integrate
    and runs no scan of skops' trust lists), using them in the same process gives exactly what
    a process that never met bottleneck gets, directly and through scikit-learn's code that
    took their names while they were deferred."""
    from bottleneck.cache.synthetic import gaussian_shards, write_cache

    cache = write_cache(tmp_path / "cache", gaussian_shards(120, 8, 3), ["a", "b", "c"], (8,))
    fit_first = f"""
import sys
from click.testing import CliRunner
from bottleneck.cli import main
result = CliRunner().invoke(main, ["fit", {str(cache)!r}, "--head", "logreg", "-q",
                                   "-o", {str(tmp_path / "model")!r}])
assert result.exit_code == 0, result.output
held = [m for m in ("scipy.stats", "scipy.interpolate", "scipy.integrate") if m in sys.modules]
assert held == [], held
import skops.io._trusted_types as trusted
assert type(trusted.SCIPY_UFUNC_TYPE_NAMES).__name__ == "LazyNames"
assert list.__len__(trusted.SCIPY_UFUNC_TYPE_NAMES) == 0, "skops scanned the ufuncs"
import sklearn.preprocessing._data, sklearn.metrics._ranking
assert type(sklearn.preprocessing._data.stats).__name__ == "DeferredModule"
assert type(sklearn.metrics._ranking.rankdata).__name__ == "Forwarded"
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("KERAS_BACKEND", None)
    # the reference imports skops as skops does, torch hidden for that (skops' listing of
    # estimators would import it, for seconds; it holds no ufunc of scipy's)
    plain = ("import sys\nfrom bottleneck.heads.skops_import import _NoTorch\n"
             "sys.meta_path.insert(0, _NoTorch())\nimport skops.io\nsys.meta_path.pop(0)\n")
    outputs = []
    for prefix in (plain, fit_first):
        done = subprocess.run([sys.executable, "-c", prefix + USES], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        outputs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    reference, after_fit = outputs
    assert reference["real"] == [True, True, True, True]
    assert reference["skops"][0] == [] and reference["skops"][2] and reference["estimators"][0]
    assert after_fit == reference
