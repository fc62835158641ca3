"""roles/ray_node/files/wait_ready.py: the journal lines a failed start shows."""

from __future__ import annotations

from support import REPO, load_by_path

wait_ready = load_by_path(REPO / "roles/ray_node/files/wait_ready.py", "wait_ready")


def test_readable_keeps_rays_words_and_drops_colours_and_frames() -> None:
    lines = [
        "Started raykit-ray.service - Ray head node (raykit).",
        "2026-12-01 21:30:20,467\tINFO scripts.py:1043 -- \x1b[37mLocal node IP\x1b[39m: 10.0.0.1",
        "Traceback (most recent call last):",
        '  File "/opt/raykit/venvs/x/bin/ray", line 10, in <module>',
        "    sys.exit(main())",
        "             ~~~~^^",
        '  File "/opt/raykit/venvs/x/lib/python3.13/site-packages/ray/scripts/scripts.py", line 3',
        "    return cli()",
        "",
        "ConnectionError: GCS at 10.0.0.1:6379 is not available",
    ]
    assert wait_ready.readable(lines) == [
        "Started raykit-ray.service - Ray head node (raykit).",
        "2026-12-01 21:30:20,467\tINFO scripts.py:1043 -- Local node IP: 10.0.0.1",
        "Traceback (most recent call last):",
        "ConnectionError: GCS at 10.0.0.1:6379 is not available",
    ]
