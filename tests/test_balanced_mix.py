"""train/balanced_mix.py: the class-balanced training mix the default model was fine-tuned on."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("balanced_mix", ROOT / "train" / "balanced_mix.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rare_classes_are_linked_more_often_by_the_square_root_rule(tmp_path):
    mix = load_script()
    assert mix.repeats({"airplanes": 800, "ant": 42, "bonsai": 128, "watch": 200, "tiny": 20}) == {
        "airplanes": 1, "ant": 4, "bonsai": 2, "watch": 2, "tiny": 6}  # 4.4, 2.5 (half to even), 2, 6.3
    data = tmp_path / "train"
    for name, count in (("big", 9), ("small", 1)):
        (data / "caltech101" / name).mkdir(parents=True)
        for i in range(count):
            (data / "caltech101" / name / f"{name}{i}.jpg").write_bytes(b"jpeg")
    (data / "clothing").mkdir()
    (data / "clothing" / "shirt.jpg").write_bytes(b"jpeg")
    links = mix.link_mix(data, tmp_path / "mix")
    assert links == {"big": 9, "small": 3, "clothing": 1}
    small = sorted(p.name for p in (tmp_path / "mix" / "caltech101" / "small").iterdir())
    assert small == ["small0.jpg", "small0__r1.jpg", "small0__r2.jpg"]
    assert all(p.is_symlink() and p.resolve() == (data / "caltech101" / "small" / "small0.jpg").resolve()
               for p in (tmp_path / "mix" / "caltech101" / "small").iterdir())
