"""Coverage-guided fuzzing of decode + normalise with atheris (``make fuzz``).

The first byte of an input picks the webhook, the rest is the body. Every input must
end as a Record or a ``Malformed`` (a 400 and a dead letter); anything else is a crash.
libFuzzer writes a crashing input into tests/fixtures/fuzz/, where the unit tests
replay it from then on (tests/unit/test_fuzz_regressions.py).

    python fuzz/decode.py [SECONDS [SEEDS]]   (make fuzz FUZZ_SECONDS=600 FUZZ_SEEDS=dir)

The corpus is seeded from SEEDS (by default tests/fixtures/plug/, the documented payloads
the repository carries) into .fuzz/corpus/, which grows between runs.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from pipeline import ingest
    from pipeline.errors import Malformed
    from pipeline.webhooks import Webhook

ROOT = Path(__file__).resolve().parents[1]
HOOKS = list(Webhook)
CRASHES = ROOT / "tests" / "fixtures" / "fuzz"
CORPUS = ROOT / ".fuzz" / "corpus"
SEEDS = [ROOT / "tests" / "fixtures" / "plug"]


def one_input(data: bytes) -> None:
    if not data:
        return
    hook = HOOKS[data[0] % len(HOOKS)]
    # a Malformed is a 400 with a dead letter: what a bad body should get
    with contextlib.suppress(Malformed):
        ingest.ingest(hook, "fuzz", data[1:], 1, "plug")


def seed() -> None:
    """One corpus file per payload: its webhook's index byte, then the payload."""
    CORPUS.mkdir(parents=True, exist_ok=True)
    source = next((s for s in SEEDS if s.is_dir()), None)
    if source is None:
        return
    for index, hook in enumerate(HOOKS):
        for path in sorted((source / hook.value).glob("*.json")):
            (CORPUS / f"seed-{hook.value}-{path.stem}").write_bytes(
                bytes([index]) + path.read_bytes()
            )
    print(f"fuzz: corpus seeded from {source}", file=sys.stderr)


def main() -> None:
    seconds = sys.argv[1] if len(sys.argv) > 1 else "300"
    if len(sys.argv) > 2:
        SEEDS.insert(0, Path(sys.argv[2]))
    seed()
    CRASHES.mkdir(parents=True, exist_ok=True)
    args = [
        sys.argv[0],
        str(CORPUS),
        f"-max_total_time={seconds}",
        f"-artifact_prefix={CRASHES}/",
        "-rss_limit_mb=2048",
        "-max_len=65536",
    ]
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
