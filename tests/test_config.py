from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vidnas.config import (
    PRESETS,
    ConfigError,
    dump_config,
    load_config,
    preset_path,
    with_overrides,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_paper_preset_has_the_papers_scale_and_schedule():
    cfg = load_config("paper")
    assert cfg.input == (3, 16, 224, 224)
    assert cfg.search.epochs == 70 and cfg.search.batch_size == 8
    assert cfg.train.epochs == 150 and cfg.train.dropout == 0.5
    assert cfg.data.search_split == (0.6, 0.2, 0.2)
    assert cfg.data.train_resize == (256, 342)
    assert cfg.test.clips * cfg.test.crops == 30


def test_the_paper_a1_example_holds_the_papers_hyper_parameters():
    cfg = load_config(EXAMPLES / "paper-a1.yaml")
    s, t = cfg.search, cfg.train
    assert cfg.input == (3, 16, 224, 224) and s.epochs == 70 and s.warmup_epochs == 10
    assert (s.w_optimizer, s.w_lr, s.w_lr_min, s.w_lr_warmup_epochs) == ("sgd", 0.02, 1e-4, 0)
    assert (s.arch_lr, s.arch_betas, s.arch_eps, s.arch_weight_decay) == (
        3e-4,
        (0.5, 0.999),
        1e-8,
        1e-3,
    )
    assert s.residual_init == 0 and s.cost_lambda == 0.1
    assert (t.optimizer, t.lr, t.lr_warmup_epochs, t.residual_init) == ("sgd", 0.1, 0, 0)


# What a preset may say about the search: how much of it there is, not how it works.
SEARCH_SCALE_KEYS = {"epochs", "batch_size", "eval_batches", "checkpoint_every"}


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_set_the_searchs_scale_and_nothing_of_its_method(preset):
    data = yaml.safe_load(preset_path(preset).read_text())
    assert set(data.get("search", {})) <= SEARCH_SCALE_KEYS


@pytest.mark.parametrize("preset", ["paper", "cpu-small", "demo", "tiny"])
def test_presets_load_and_round_trip(preset, tmp_path):
    cfg = load_config(preset)
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg


def test_overrides_are_typed():
    cfg = load_config(
        "tiny",
        [
            "search.epochs=5",
            "data.root=/x",
            "search.w_lr=1e-3",
            "input=3x4x32x32",
            "space.stages.2.max_layers=3",
            "search.budget_gmacs=null",
            "search.dimensions=[ops,depth]",
        ],
    )
    assert cfg.search.epochs == 5
    assert cfg.data.root == "/x"
    assert cfg.search.w_lr == pytest.approx(1e-3)
    assert cfg.input == (3, 4, 32, 32)
    assert cfg.space.stages[2].max_layers == 3
    assert cfg.search.dimensions == ["ops", "depth"]


def test_renamed_keys_still_load_with_a_warning():
    with pytest.warns(FutureWarning, match="'search.channels' is deprecated"):
        cfg = load_config("tiny", ["search.channels=false"])
    assert cfg.search.dimensions == ["ops", "depth"]
    with pytest.warns(FutureWarning, match="'search.ops' is deprecated"):
        cfg = load_config("tiny", ["search.ops=false", "search.ops=true"])
    assert cfg.search.dimensions == ["channels", "ops", "depth"]


def test_with_overrides_makes_a_validated_copy():
    cfg = load_config("tiny")
    other = with_overrides(cfg, "seed=3", "search.epochs=4")
    assert (other.seed, other.search.epochs) == (3, 4)
    assert (cfg.seed, cfg.search.epochs) == (0, 2)
    with pytest.raises(ConfigError, match="search.warmup_epochs"):
        with_overrides(cfg, "search.warmup_epochs=9")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("search.epoch=5", "unknown key 'search.epoch'; did you mean 'epochs'"),
        ("search.epochs=many", "search.epochs: expected an integer, got 'many'"),
        ("search.channels=3", "search.channels: expected a boolean"),
        ("search.dimensions=[width]", "search.dimensions.0: expected one of 'channels'"),
        (
            "runtime.precision=fp8",
            "runtime.precision: expected one of 'auto', 'fp32', 'bf16', 'fp16', got 'fp8'",
        ),
        ("input=3x16x224", "input: expected a list of 4 ints"),
        ("nosuch.key=1", "unknown key 'nosuch'"),
        ("space.stages.9.widths=[1]", "'space.stages.9': expected a list index below 6"),
        ("search.epochs", "must look like key=value"),
        ("data.search_split=[0.5,0.2,0.2]", "data.search_split: fractions must sum to 1"),
        ("search.warmup_epochs=99", "search.warmup_epochs: must be in [0, search.epochs]"),
        ("train.residual_init=-1", "train.residual_init: must be >= 0"),
        ("search.budget_tolerance=1.5", "search.budget_tolerance: must be in (0, 1)"),
        ("search.w_optimizer=lion", "search.w_optimizer: expected one of 'sgd', 'adamw'"),
        ("search.arch_eps=0", "search.arch_eps: must be > 0"),
        ("train.optimizer=lion", "train.optimizer: expected one of 'sgd', 'adamw'"),
        ("search.w_lr_warmup_epochs=-1", "search.w_lr_warmup_epochs: must be >= 0"),
        ("train.lr_warmup_epochs=-1", "train.lr_warmup_epochs: must be >= 0"),
        ("data.synth.task=spin", "data.synth.task: expected one of 'motion', 'echo'"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config("tiny", [override])
    assert message in str(err.value)


def test_yaml_file_with_base_and_errors(tmp_path):
    good = tmp_path / "mine.yaml"
    good.write_text(yaml.safe_dump({"base": "tiny", "search": {"epochs": 7}}))
    cfg = load_config(good)
    assert cfg.search.epochs == 7 and cfg.input == load_config("tiny").input

    bad = tmp_path / "bad.yaml"
    bad.write_text("search:\n  batchsize: 4\n")
    with pytest.raises(ConfigError, match="unknown key 'search.batchsize'"):
        load_config(bad)

    with pytest.raises(ConfigError, match="neither a preset"):
        load_config(tmp_path / "missing.yaml")

    loop = tmp_path / "loop.yaml"
    loop.write_text(f"base: {loop}\n")
    with pytest.raises(ConfigError, match="chain loops"):
        load_config(loop)

    notmap = tmp_path / "list.yaml"
    notmap.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(notmap)
