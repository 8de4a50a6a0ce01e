"""The batch params are declared once (``PARAMS``): the dataclass, validation and the admin's
form all follow that table."""
from dataclasses import fields

from algorithms.ranking import BATCH_TYPES, BatchParams
from algorithms.ranking.params import PARAMS, param_errors


def test_every_param_is_declared_once_in_the_dataclass_order():
    assert [spec.name for spec in PARAMS] == [f.name for f in fields(BatchParams)]


def test_declared_batch_types_are_registered_ones():
    for spec in PARAMS:
        assert spec.batch_types and set(spec.batch_types) <= set(BATCH_TYPES), spec.name


def test_each_default_is_valid_and_the_range_edges_are_judged_by_the_declaration():
    for spec in PARAMS:
        assert param_errors({spec.name: spec.default}) == [], spec.name
        if spec.maximum is not None:
            assert param_errors({spec.name: spec.maximum}) == []
            assert param_errors({spec.name: spec.maximum + 1}) and spec.name in param_errors({spec.name: spec.maximum + 1})[0]
        if spec.minimum is not None:
            below = spec.minimum - (1 if spec.whole else 0.001)
            assert param_errors({spec.name: below}) and spec.name in param_errors({spec.name: below})[0]
