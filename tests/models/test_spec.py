from __future__ import annotations

import json

import pytest

from vidnas.models.archs import resolve_arch
from vidnas.models.network import build_network
from vidnas.models.spec import ArchSpec, SpecError


def _paper_dict():
    return resolve_arch("paper-k400").to_dict()


def test_paper_k400_follows_table_3():
    spec = resolve_arch("paper-k400")
    assert spec.input == (3, 16, 224, 224)
    assert spec.stem_width == 32 and spec.num_classes == 400
    assert [st.width for st in spec.stages] == [64, 96, 160, 224, 288, 512]
    assert [len(st.ops) for st in spec.stages] == [0, 0, 6, 2, 3, 1]
    assert spec.stages[2].ops == ("dil4", "dil4", "dil4", "dil1", "dil1", "dil4")
    assert spec.stages[-1].ops == ("dil2",)


def test_baseline_is_middle_widths_all_dil1(tiny_space):
    spec = resolve_arch("r2plus1d-baseline")
    assert [st.width for st in spec.stages] == [56, 96, 160, 208, 272, 496]
    assert [len(st.ops) for st in spec.stages] == [0, 5, 10, 5, 5, 1]
    assert {op for st in spec.stages for op in st.ops} == {"dil1"}
    tiny = resolve_arch("r2plus1d-baseline", tiny_space, (3, 8, 32, 32), 4)
    assert [st.width for st in tiny.stages] == [st.middle_width for st in tiny_space.stages]
    assert tiny.num_classes == 4 and tiny.input == (3, 8, 32, 32)


def test_json_round_trip(tmp_path):
    spec = resolve_arch("paper-k400")
    path = tmp_path / "arch.json"
    spec.save(path)
    again = ArchSpec.load(path)
    assert again == spec
    assert again.meta["x-source"].startswith("Table 3")
    assert build_network(again).spec == spec


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("num_classes"), "num_classes: missing"),
        (lambda d: d.update(num_classes=0), "num_classes: expected a positive integer, got 0"),
        (lambda d: d.update(input=[3, 16, 224]), "input: expected [C, T, H, W]"),
        (lambda d: d.update(input=[1, 16, 224, 224]), "input: expected 3 (RGB) channels"),
        (lambda d: d.update(format="other/2"), "format: expected 'vidnas-arch/1'"),
        (lambda d: d.update(depth=3), "unknown field 'depth'"),
        (lambda d: d["stem"].update(width="32"), "stem.width: expected a positive integer"),
        (lambda d: d["stages"][2].update(ops=["dil4", "dil3x"]), "stages[2].ops[1]: unknown op"),
        (lambda d: d["stages"][2].update(ops=["skip"]), "stages[2].ops[0]: 'skip' does not"),
        (lambda d: d["stages"][2].update(ops="dil1"), "stages[2].ops: expected a list"),
        (lambda d: d["stages"][1].update(stride=3), "stages[1].stride: expected 1 or 2"),
        (lambda d: d["stages"][1].update(kernel=3), "stages[1].kernel: unknown field"),
        (lambda d: d["stages"][0].pop("width"), "stages[0].width: missing"),
        (lambda d: d.update(stages=[]), "stages: expected a non-empty list"),
    ],
)
def test_bad_specs_name_the_field(edit, message):
    data = _paper_dict()
    edit(data)
    with pytest.raises(SpecError) as err:
        ArchSpec.from_dict(data)
    assert message in str(err.value)


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError, match="bad.json: not valid JSON"):
        ArchSpec.load(bad)
    bad.write_text(json.dumps([1, 2]))
    with pytest.raises(SpecError, match="is a JSON object"):
        ArchSpec.load(bad)
    with pytest.raises(SpecError, match="cannot read architecture spec"):
        ArchSpec.load(tmp_path / "missing.json")
    with pytest.raises(SpecError, match="neither a built-in architecture"):
        resolve_arch("no-such-arch")


def test_hand_designed_network_matches_a_cost_by_its_recipe():
    """The hand-designed row: one width rule for every stage, dilations 1, 2, 4 in turn
    along the kept layers, and of all such networks the one closest to the cost."""
    import itertools

    from vidnas.config import load_config
    from vidnas.models.archs import hand_designed_spec
    from vidnas.models.cost import network_cost
    from vidnas.models.space import SearchSpace

    cfg = load_config("demo")
    space = SearchSpace.from_config(cfg.space)
    for target in (0.008e9, 0.0126e9, 0.019e9):
        spec = hand_designed_spec(space, cfg.input, 4, target)
        ops = [op for st in spec.stages for op in st.ops]
        assert ops == [("dil1", "dil2", "dil4")[i % 3] for i in range(len(ops))]
        widths = [st.width for st in spec.stages]
        assert widths in (
            [st.widths[0] for st in space.stages],
            [st.middle_width for st in space.stages],
            [st.widths[-1] for st in space.stages],
        )
        gap = abs(network_cost(spec).macs - target)
        # No network of the recipe is closer: every depth vector at every width rule.
        for rule in (0, -1):
            for depths in itertools.product(*(range(st.max_layers + 1) for st in space.stages)):
                n, stages = 0, []
                for st, d in zip(space.stages, depths):
                    stages.append(
                        type(spec.stages[0])(
                            st.widths[rule],
                            st.stride,
                            tuple(("dil1", "dil2", "dil4")[(n + i) % 3] for i in range(d)),
                        )
                    )
                    n += d
                other = spec.replace(stages=tuple(stages))
                assert abs(network_cost(other).macs - target) >= gap - 1e-6
    assert network_cost(hand_designed_spec(space, cfg.input, 4, 0.0126e9)).macs == 12_601_056
