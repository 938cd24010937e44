"""Tests for advjax/evaluation/early_stopping.py."""
import numpy as np
import optax
import pytest

from advjax import data, evaluation, models, training


def test_early_stopping_picks_the_lowest_score():
  scores = {1: 0.5, 2: 0.2, 3: 0.3, 4: 0.2, 5: float("nan")}
  loaded = []
  load = lambda e: loaded.append(e) or {"epoch": e}
  out = evaluation.early_stopping(lambda v: scores[v["epoch"]], load,
                                  range(1, 6))
  assert out.epoch == 2 and out.variables == {"epoch": 2}  # first of ties
  assert out.epochs == (1, 2, 3, 4, 5) and loaded == [1, 2, 3, 4, 5]
  np.testing.assert_array_equal(out.scores[:4], [0.5, 0.2, 0.3, 0.2])
  assert out.summary()["epoch"] == 2
  with pytest.raises(ValueError, match="no epochs"):
    evaluation.early_stopping(lambda v: 0., load, [])
  with pytest.raises(ValueError, match="NaN"):
    evaluation.early_stopping(lambda v: float("nan"), load, [1])


def test_early_stopping_over_kept_epochs(tmp_path):
  ds = data.load("synthetic", "train", limit=64)
  model = models.FC10(num_classes=ds.num_classes)
  training.fit(model, optax.adam(1e-2), ds, epochs=3, batch_size=16,
               workdir=str(tmp_path), epoch_checkpoints=True, progress=False)
  apply_fn = lambda v, x: model.apply(v, x, train=False)
  error = lambda v: evaluation.error_confidence(apply_fn, v, ds.images,
                                                ds.labels).error
  out = evaluation.early_stopping(
      error, lambda e: training.epoch_variables(str(tmp_path), e),
      training.kept_epochs(str(tmp_path)))
  assert out.epochs == (0, 1, 2, 3)
  assert out.scores[out.epochs.index(out.epoch)] == min(out.scores)
  assert error(out.variables) == min(out.scores)
