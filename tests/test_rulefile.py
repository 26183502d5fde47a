"""Rule files are parsed once, safely, and every error names the file and line."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from custody.engine import rulefile
from custody.engine.rulefile import (
    FACTS_SETTINGS_FILE,
    RuleFileError,
    RuleModel,
    default_rules_dir,
    load_rule_file,
    load_rule_set,
    load_yaml,
    rule_files,
)

SHIPPED = default_rules_dir()


def _reference_load(path: Path) -> tuple[Any, dict[tuple[str | int, ...], int]]:
    """The loader as it was: pure-Python PyYAML, the file parsed twice (compose, then load)."""
    text = path.read_text(encoding="utf-8")
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    data = yaml.load(text, Loader=yaml.SafeLoader)
    assert node is not None
    return data, dict(rulefile._lines(node))


def _write(tmp_path: Path, text: str, name: str = "EX-RULE.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_c_parser_is_used_when_pyyaml_has_libyaml() -> None:
    if not yaml.__with_libyaml__:
        pytest.skip("this PyYAML was built without libyaml")
    assert issubclass(rulefile._RuleLoader, yaml.CSafeLoader)


@pytest.mark.parametrize("path", [*rule_files(SHIPPED), SHIPPED / FACTS_SETTINGS_FILE], ids=lambda p: p.name)
def test_every_shipped_file_loads_exactly_as_the_pure_python_loader_does(path: Path) -> None:
    data, lines = load_yaml(path)
    reference_data, reference_lines = _reference_load(path)
    assert data == reference_data
    assert lines == reference_lines
    if path.name != FACTS_SETTINGS_FILE:
        source = load_rule_file(path)
        assert source.rule == RuleModel.model_validate(reference_data)
        assert source.text == path.read_text(encoding="utf-8")


def test_the_digest_covers_every_rule_file_and_the_facts_settings() -> None:
    expected = hashlib.sha256((SHIPPED / FACTS_SETTINGS_FILE).read_bytes())
    for path in rule_files(SHIPPED):
        expected.update(path.name.encode() + b"\0" + path.read_bytes())
    assert load_rule_set(SHIPPED).digest == expected.hexdigest()


def test_a_duplicate_key_names_the_lines_of_both(tmp_path: Path) -> None:
    path = _write(tmp_path, "id: EX-RULE\ntitle: one\nbasis: statute\ntitle: two\n")
    with pytest.raises(RuleFileError) as caught:
        load_yaml(path)
    assert caught.value.line == 4
    assert str(caught.value).startswith(f"{path}:4: ")
    assert "duplicate key 'title' (first on line 2)" in str(caught.value)


def test_a_duplicate_key_deep_in_the_file_is_refused_too(tmp_path: Path) -> None:
    path = _write(tmp_path, "versions:\n  - effective_from: 2000-01-01\n    params: {a: 1, a: 2}\n")
    with pytest.raises(RuleFileError, match=r":3: .*duplicate key 'a' \(first on line 3\)"):
        load_yaml(path)


def test_lines_are_recorded_for_every_value_by_key_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "a:\n  b: 1\n  c:\n    - x\n    - y: 2\n")
    data, lines = load_yaml(path)
    assert data == {"a": {"b": 1, "c": ["x", {"y": 2}]}}
    assert lines[("a", "b")] == 2
    assert lines[("a", "c", 0)] == 4
    assert lines[("a", "c", 1, "y")] == 5


def test_a_bad_value_in_a_rule_names_the_file_and_its_line(tmp_path: Path) -> None:
    text = (SHIPPED / "PACE-REVIEW.yaml").read_text(encoding="utf-8")
    assert "\nseverity: high\n" in text
    broken = text.replace("\nseverity: high\n", "\nseverity: enormous\n", 1)
    line = broken.splitlines().index("severity: enormous") + 1
    path = _write(tmp_path, broken, "PACE-REVIEW.yaml")
    with pytest.raises(RuleFileError) as caught:
        load_rule_set(tmp_path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: severity: ")


def test_a_python_tag_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = _write(tmp_path, f"id: !!python/object/apply:pathlib.Path.touch [{str(marker)!r}]\n")
    with pytest.raises(RuleFileError, match=r":1: is not valid YAML: could not determine a constructor"):
        load_yaml(path)
    assert not marker.exists()
    path = _write(tmp_path, "id: !!python/object:custody.engine.rulefile.RuleSet {}\n")
    with pytest.raises(RuleFileError, match="is not valid YAML"):
        load_yaml(path)


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "id: EX-RULE\ncitations: [one, two\ntitle: x\n")
    with pytest.raises(RuleFileError) as caught:
        load_yaml(path)
    assert caught.value.line in (2, 3)
    assert "is not valid YAML" in caught.value.message


def test_a_file_that_is_not_utf8_is_refused_in_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "EX-RULE.yaml"
    path.write_bytes(b"id: EX-RULE\ntitle: caf\xe9\n")
    with pytest.raises(RuleFileError, match=r"cannot be read \(UnicodeDecodeError\)"):
        load_rule_file(path)


def test_an_empty_file_is_not_a_rule(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="is not a rule"):
        load_rule_file(_write(tmp_path, ""))


def test_a_recursive_alias_does_not_hang_the_line_map(tmp_path: Path) -> None:
    data, lines = load_yaml(_write(tmp_path, "a: &loop\n  - *loop\n"))
    assert data["a"][0] is data["a"]
    assert ("a", 0) in lines


def test_without_libyaml_the_pure_python_safe_loader_does_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class PureLoader(yaml.SafeLoader):
        pass

    PureLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, rulefile._construct_mapping)
    fast = load_rule_set(SHIPPED)
    monkeypatch.setattr(rulefile, "_RuleLoader", PureLoader)
    pure = load_rule_set(SHIPPED)
    assert [(s.rule, s.lines) for s in pure.rules] == [(s.rule, s.lines) for s in fast.rules]
    assert pure.digest == fast.digest
    with pytest.raises(RuleFileError, match=r":3: .*duplicate key 'a' \(first on line 1\)"):
        load_yaml(_write(tmp_path, "a: 1\nb: 2\na: 3\n"))
    with pytest.raises(RuleFileError, match="could not determine a constructor"):
        load_yaml(_write(tmp_path, "a: !!python/name:os.system\n"))
