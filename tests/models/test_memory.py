"""Memory estimates count every working copy, and the container's limit caps what is free."""

from __future__ import annotations

from pathlib import Path

from bottleneck.models.memory import bytes_per_element, cgroup_available


def test_every_copy_counts() -> None:
    # the features once as stored, a float32 copy of float16 ones, then the head's own copies
    assert bytes_per_element("float16", 12) == 2 + 4 + 12
    assert bytes_per_element("float32", 12) == 4 + 12
    assert bytes_per_element("float32", 0) == 4  # the streaming linear probe's chunks
    assert bytes_per_element("float32") == 4 + 32  # the hungriest head (ridge)


def test_cgroup_v2_and_v1_limits(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text("1073741824\n")
    (v2 / "memory.current").write_text("268435456\n")
    assert cgroup_available(v2) == 768 << 20
    (v2 / "memory.max").write_text("max\n")
    assert cgroup_available(v2) is None
    v1 = tmp_path / "v1" / "memory"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text("2147483648\n")
    (v1 / "memory.usage_in_bytes").write_text("1073741824\n")
    assert cgroup_available(tmp_path / "v1") == 1 << 30
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # "unlimited"
    assert cgroup_available(tmp_path / "v1") is None
    assert cgroup_available(tmp_path / "nowhere") is None


def test_the_memory_limit_variable_caps_what_is_available(monkeypatch) -> None:
    from bottleneck.models.memory import available_memory, parse_size

    assert parse_size("512M") == 512 << 20 and parse_size("1.5GiB") == 3 << 29
    monkeypatch.setenv("BOTTLENECK_MEMORY_LIMIT", "1M")
    assert available_memory() == 1 << 20
