"""Producer tuning: Kafka's partitioner bit for bit, and compression levels that take effect."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from aiokafka import codec
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from pipeline.config import Config, load
from pipeline.errors import ConfigError
from pipeline.kafka_client import message_bytes_needed, producer_settings
from pipeline.runtime import allocator
from pipeline.simulate.generator import Generator
from pipeline.sink.codecs import CODECS, levels_for, lz4_frame, set_levels
from pipeline.sink.partitioner import murmur2, partition_for

# org.apache.kafka.common.utils.UtilsTest.testMurmur2
JAVA = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}


@pytest.mark.parametrize(("text", "expected"), JAVA.items())
def test_murmur2_is_javas(text: str, expected: int) -> None:
    assert murmur2(text.encode()) == expected


def test_partitions_agree_with_aiokafkas_partitioner_for_many_keys() -> None:
    keys = [os.urandom(n % 48) for n in range(3000)] + [
        f"acme:5511{n:09d}".encode() for n in range(3000)
    ]
    for key in keys:
        for count in (1, 3, 6, 7, 64):
            expected = (aiokafka_murmur2(key) & 0x7FFFFFFF) % count
            assert partition_for(key, count) == expected


@pytest.fixture
def restored() -> Iterator[None]:
    yield
    set_levels({})


def batch(compression: str, value: bytes) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=CODECS[compression],
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 22,
    )
    builder.append(0, timestamp=None, key=b"k", value=value, headers=[])
    return bytes(builder.build())


@pytest.mark.usefixtures("restored")
@pytest.mark.parametrize(("compression", "low", "high"), [("lz4", 1, 9), ("zstd", 1, 19)])
def test_a_level_reaches_aiokafkas_batch_builder(compression: str, low: int, high: int) -> None:
    # text that compresses differently at the two levels
    value = b"".join(f"{n} {n * n} {n % 7} message text ".encode() for n in range(20000))
    set_levels({compression: low})
    fast = batch(compression, value)
    set_levels({compression: high})
    small = batch(compression, value)
    assert len(small) < len(fast)
    for built in (fast, small):  # both are the codec's own format: any consumer reads them
        [record] = list(DefaultRecordBatch(built))
        assert record.value == value


@pytest.mark.usefixtures("restored")
def test_lz4_batches_are_one_frame_of_large_independent_blocks() -> None:
    gen = Generator(seed=2)  # a batch of transcripts: alike, but not within 64 KB
    value = b"".join(gen.finish_attendance_body(40) for _ in range(60))
    assert len(value) > 1 << 20
    set_levels({"lz4": 1})
    [record] = list(DefaultRecordBatch(batch("lz4", value)))  # aiokafka (cramjam) reads it
    assert record.value == value
    frame = lz4_frame(value)
    # the window spans the batch, not 64 KB of it: smaller than aiokafka's at the same level
    assert len(frame) < len(codec.lz4_encode(value, level=1)) * 0.9
    # the frame descriptor (after the 4-byte magic): FLG with independent blocks and no
    # content checksum, BD with a 4 MB maximum block size, what Kafka's Java client reads
    flg, bd = frame[4], frame[5]
    assert frame[:4] == b"\x04\x22\x4d\x18"
    assert flg & 0b0010_0000  # block independence
    assert not flg & 0b0000_0100  # no content checksum
    assert (bd >> 4) & 0b111 == 7  # 4 MB
    assert codec.lz4_decode(frame) == value


def test_lz4_defaults_to_level_1_and_others_to_aiokafkas() -> None:
    assert levels_for(Config()) == {"lz4": 1}
    assert levels_for(Config(compression="zstd")) == {}
    assert levels_for(Config(compression="zstd", compression_level=5)) == {"zstd": 5}
    assert levels_for(Config(compression=None)) == {}
    assert lz4_frame(b"x" * 100, level=1)  # the function we bind exists as used


@pytest.mark.parametrize(
    "env",
    [
        {"PLUG_PIPELINE_COMPRESSION": "snappy", "PLUG_PIPELINE_COMPRESSION_LEVEL": "3"},
        {"PLUG_PIPELINE_COMPRESSION": "lz4", "PLUG_PIPELINE_COMPRESSION_LEVEL": "17"},
        {"PLUG_PIPELINE_COMPRESSION": "gzip", "PLUG_PIPELINE_COMPRESSION_LEVEL": "0"},
    ],
)
def test_a_level_the_codec_does_not_take_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="level"):
        load(env)


def test_a_producer_batch_holds_a_burst_of_transcripts_and_stays_on_the_heap() -> None:
    settings = producer_settings(Config())
    # 64 finishAttendance events of 43 KB at once fit one batch ...
    assert settings["max_batch_size"] >= 64 * 43_000
    # ... whose buffer, grown by an eighth at most, stays under the mmap threshold
    assert settings["max_batch_size"] * 9 // 8 < allocator.MMAP_THRESHOLD
    # and never over what a topic takes
    small = Config(max_body_bytes=256 * 1024)
    assert producer_settings(small)["max_batch_size"] == message_bytes_needed(small)
