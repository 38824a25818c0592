"""Typed plugin options: values from Python, configs and `--set` strings become checked dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from aebench.errors import OptionError
from aebench.options import NoOptions, build_options, describe_options, option, options_to_dict, parse_assignments


@dataclass(frozen=True)
class Demo:
    k: int = option(10, "components", min=1)
    rate: float = option(0.5, "a share", min=0, max=1)
    extent: float = option(2.0, "strictly positive", min=0, min_exclusive=True)
    axes: tuple[int, ...] | None = option(None, "two axes", min=0)
    angles: tuple[float, ...] = option((0.0, 90.0), "degrees")
    flag: bool = option(False, "a switch")
    mode: Literal["even", "random"] = option("even", "spacing")
    level: Literal[1, 2, 3] = option(1, "a numeric choice")
    label: str = option("x", "free text")
    limit: float | None = option(None, "optional number")

    def __post_init__(self) -> None:
        if self.axes is not None and len(self.axes) != 2:
            raise OptionError(f"axes needs two components, got {len(self.axes)}.")


def build(**values):
    return build_options(Demo, values, owner="demo")


def test_defaults_fill_unset_fields():
    assert build() == Demo()


@pytest.mark.parametrize("raw, expected", [("3", 3), (3, 3), (3.0, 3)])
def test_integers_from_strings_ints_and_whole_floats(raw, expected):
    value = build(k=raw).k
    assert value == expected and type(value) is int


@pytest.mark.parametrize("raw", ["3.5", 3.5, True, "three", None])
def test_non_integers_are_rejected(raw):
    with pytest.raises(OptionError, match="option demo.k"):
        build(k=raw)


def test_floats_parse_and_reject_nan_and_text():
    assert build(rate="0.25").rate == 0.25
    assert build(limit="1e4").limit == 1e4
    with pytest.raises(OptionError, match="NaN is not allowed"):
        build(rate="nan")
    with pytest.raises(OptionError, match="not a number"):
        build(rate="half")
    with pytest.raises(OptionError, match="not a number"):
        build(rate=False)


def test_tuples_from_comma_lists_sequences_and_scalars():
    assert build(angles="0, 45,90").angles == (0.0, 45.0, 90.0)
    assert build(angles=[10, 20]).angles == (10.0, 20.0)
    assert build(angles=30).angles == (30.0,)
    assert build(axes="4,7").axes == (4, 7)
    with pytest.raises(OptionError, match="cannot read '4,x'"):
        build(axes="4,x")


@pytest.mark.parametrize("raw, expected", [("true", True), ("Yes", True), ("1", True), ("off", False),
                                           ("0", False), (True, True), (False, False)])
def test_booleans(raw, expected):
    assert build(flag=raw).flag is expected


@pytest.mark.parametrize("raw", ["maybe", 1, "2"])
def test_bad_booleans(raw):
    with pytest.raises(OptionError, match="not a boolean"):
        build(flag=raw)


def test_literals_accept_only_listed_values_and_keep_their_type():
    assert build(mode="random").mode == "random"
    assert build(level="2").level == 2 and build(level=3).level == 3
    with pytest.raises(OptionError, match="'sparse' is not one of even, random"):
        build(mode="sparse")
    with pytest.raises(OptionError, match="not one of 1, 2, 3"):
        build(level="4")


def test_optional_values_accept_none_spellings():
    for raw in (None, "none", "null", ""):
        assert build(limit=raw).limit is None
        assert build(axes=raw).axes is None


def test_strings_must_be_strings():
    assert build(label="hello").label == "hello"
    with pytest.raises(OptionError, match="not a string"):
        build(label=5)


@pytest.mark.parametrize("values, message", [
    ({"k": 0}, "option demo.k must be >= 1, got 0"),
    ({"rate": 1.5}, "option demo.rate must be <= 1, got 1.5"),
    ({"extent": 0}, "option demo.extent must be > 0, got 0"),
    ({"axes": "-1,3"}, "option demo.axes must be >= 0, got -1"),
])
def test_bounds(values, message):
    with pytest.raises(OptionError, match=message):
        build(**values)


def test_bounds_are_inclusive_unless_marked_exclusive():
    assert build(k=1, rate=0, extent=1e-9).rate == 0
    assert build(rate=1).rate == 1


def test_cross_field_checks_in_post_init_name_the_owner():
    with pytest.raises(OptionError, match="^demo: axes needs two components, got 3"):
        build(axes="1,2,3")


def test_unknown_option_suggests_the_closest_name():
    with pytest.raises(OptionError, match="Unknown option 'demo.angle'. Did you mean 'angles'\\? Available: k, rate"):
        build(angle="0")
    with pytest.raises(OptionError, match="Unknown option 'demo.zzz'. Available"):
        build(zzz=1)


def test_no_options_rejects_everything():
    assert build_options(NoOptions, {}) == NoOptions()
    with pytest.raises(OptionError, match="Available: \\(none\\)"):
        build_options(NoOptions, {"k": 1}, owner="standard_normal")


def test_mutable_defaults_are_refused():
    with pytest.raises(TypeError, match="tuples"):
        option([1, 2], "a list")


def test_describe_and_dump():
    rows = {r["name"]: r for r in describe_options(Demo)}
    assert rows["axes"] == {"name": "axes", "type": "list of int or none", "default": None, "help": "two axes"}
    assert rows["angles"]["default"] == [0.0, 90.0] and rows["angles"]["type"] == "list of float"
    assert rows["mode"]["type"] == "even|random"
    dumped = options_to_dict(build(axes="1,2"))
    assert dumped["axes"] == [1, 2] and dumped["angles"] == [0.0, 90.0] and dumped["k"] == 10


def test_parse_assignments_groups_by_owner():
    parsed = parse_assignments(["plane_paths.axes=151,195", "plane_paths.angles=0,45", "gmm.k=5", "a.b.c= x=y "])
    assert parsed == {"plane_paths": {"axes": "151,195", "angles": "0,45"}, "gmm": {"k": "5"}, "a.b": {"c": "x=y"}}
    with pytest.raises(OptionError, match=r"--set 'size=32' names no owner; write --set OWNER.size=32\."):
        parse_assignments(["size=32"])  # one grammar in every command: the owner is always named
    with pytest.raises(OptionError, match=r"names no owner; write --set dataset.size=32\."):
        parse_assignments(["size=32"], owners=("dataset",))
    with pytest.raises(OptionError, match="'model' is not an owner this command takes; use dataset.OPTION"):
        parse_assignments(["model.channels=8"], owners=("dataset",))
    with pytest.raises(OptionError, match="has no '='"):
        parse_assignments(["gmm.k"])
    with pytest.raises(OptionError, match="names no option"):
        parse_assignments(["gmm.=3"])
