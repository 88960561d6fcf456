"""``register-webhooks`` against a local stand-in of Plug's API."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import unused_port
from pytest_aiohttp import AiohttpServer

from pipeline.errors import ConfigError
from pipeline.ops.register import (
    add_parser,
    check_reachable_from_plug,
    main,
    mask,
    run,
    validate_public_url,
    webhook_urls,
)
from pipeline.plug.api import PlugApi, PlugRefused, explain, summarise_body
from pipeline.webhooks import Webhook
from tests.support.plug_api_standin import PLUG_FIELDS, UPDATE_WEBHOOKS_PATH, PlugApiStandIn

PLUG_TOKEN = "1nEFbU3EktLnV7LIIzX"  # the seed's example token
ACME_TOKEN = "s3cret/+&=ac"  # characters that must be URL-encoded
PUBLIC_URL = "https://ingest.example.com"
FAST = ["--retry-delay", "0.001"]


@dataclass
class Plug:
    standin: PlugApiStandIn
    url: str

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PLUG_PIPELINE_TOKENS": f"acme={ACME_TOKEN},globex=t0kenGlobex",
            "PLUG_API_TOKEN": PLUG_TOKEN,
            "PLUG_API_URL": self.url,
            **extra,
        }


@pytest.fixture
async def plug(aiohttp_server: AiohttpServer) -> AsyncIterator[Plug]:
    standin = PlugApiStandIn(token=PLUG_TOKEN)
    server = await aiohttp_server(standin.app(), host="127.0.0.1")
    yield Plug(standin, str(server.make_url("")).rstrip("/"))
    standin.release()


def public_dns(host: str) -> list[str]:
    """A stand-in resolver (no DNS here): the test's public name has a public address."""
    return {"ingest.example.com": ["93.184.215.14"], "edge.example.com": ["2606:2800::1"]}[host]


async def register(argv: list[str], env: dict[str, str]) -> int:
    # The command runs its own event loop, as from the CLI; the stand-in serves on this one.
    return await asyncio.to_thread(main, argv, env, public_dns)


def expected_body(public_url: str = PUBLIC_URL, token: str = ACME_TOKEN) -> dict[str, str]:
    encoded = quote(token, safe="")
    return {w.plug_field: f"{public_url}/webhooks/{w.value}?token={encoded}" for w in Webhook}


# --- pure helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("public_url", "base"),
    [
        ("https://ingest.example.com", "https://ingest.example.com"),
        ("https://ingest.example.com/", "https://ingest.example.com"),
        ("https://host.example/prefix", "https://host.example/prefix"),
        ("https://host.example/prefix/", "https://host.example/prefix"),
        ("HTTPS://host.example:8443/a/b", "https://host.example:8443/a/b"),
    ],
)
def test_webhook_urls_join_base_and_event(public_url: str, base: str) -> None:
    urls = webhook_urls(public_url, "tok")
    assert list(urls) == list(Webhook)
    assert urls[Webhook.FINISH_ATTENDANCE] == f"{base}/webhooks/finish-attendance?token=tok"
    assert urls[Webhook.WHEN_DISCONNECTING] == f"{base}/webhooks/when-disconnecting?token=tok"


def test_webhook_urls_encode_the_token() -> None:
    url = webhook_urls(PUBLIC_URL, "a b/+&=?#%")[Webhook.MESSAGE_STATUS]
    assert url == f"{PUBLIC_URL}/webhooks/message-status?token=a%20b%2F%2B%26%3D%3F%23%25"


@pytest.mark.parametrize(
    "url",
    [
        "http://ingest.example.com",
        "ftp://ingest.example.com",
        "ingest.example.com",
        "//ingest.example.com",
        "https://",
        "https:///path",
        "https://ingest.example.com?x=1",
        "https://ingest.example.com/?",
        "https://ingest.example.com/#top",
        "https://user:pw@ingest.example.com",
        "https://ingest.example.com:99999",
        "https://ingest.example.com:port",
        "https://ingest example.com",
        "https://ingest.example.com/\n",
        "https://ingést.example.com",
        "",
    ],
)
def test_unusable_public_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        validate_public_url(url)


def test_non_https_is_refused_with_plugs_reason() -> None:
    with pytest.raises(ConfigError, match="not HTTPS"):
        validate_public_url("http://ingest.example.com")


@pytest.mark.parametrize(
    ("secret", "masked"),
    [("1nEFbU3EktLnV7LIIzX", "****zX"), ("abcdefgh", "****gh"), ("short", "****"), ("", "****")],
)
def test_mask_shows_at_most_two_characters(secret: str, masked: str) -> None:
    assert mask(secret) == masked


def test_long_bodies_are_cut_and_made_printable() -> None:
    text = summarise_body("x\x1b[31m" + "y" * 500)
    assert "\x1b" not in text
    assert text.endswith("...")
    assert len(text) < 210
    assert "HTTP 418" in explain(418, "teapot")
    assert "teapot" in explain(418, "teapot")


def test_add_parser_wires_run() -> None:
    parser = argparse.ArgumentParser(prog="plug-pipeline")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["register-webhooks", "--public-url", PUBLIC_URL, "--tenant", "x"])
    assert args.func is run
    assert (args.timeout, args.attempts, args.dry_run) == (10.0, 4, False)


# --- against the stand-in -----------------------------------------------------------------


async def test_success_sends_plugs_exact_request(
    plug: Plug, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await register(["--public-url", PUBLIC_URL + "/", "--tenant", "acme"], plug.env())

    assert code == 0
    [request] = plug.standin.requests
    assert request.method == "PUT"
    assert request.path == UPDATE_WEBHOOKS_PATH
    assert request.headers["Authorization"] == PLUG_TOKEN  # the bare token, no "Bearer"
    assert request.headers["Content-Type"] == "application/json"
    body = msgspec.json.decode(request.body)
    assert body == expected_body()
    assert list(body) == list(PLUG_FIELDS)
    out = capsys.readouterr()
    assert out.out.strip().splitlines() == [
        f"The seven Plug webhooks now point at {PUBLIC_URL}/webhooks/ for tenant 'acme'."
    ]
    assert out.err == ""


async def test_public_url_with_path_prefix(plug: Plug) -> None:
    public = "https://edge.example.com/plug/ingress"
    assert await register(["--public-url", public, "--tenant", "globex"], plug.env()) == 0
    body = msgspec.json.decode(plug.standin.requests[0].body)
    assert body == expected_body(public, "t0kenGlobex")


async def test_wrong_plug_token_is_explained_and_not_retried(
    plug: Plug, capsys: pytest.CaptureFixture[str]
) -> None:
    env = plug.env(PLUG_API_TOKEN="not-the-token")
    code = await register(["--public-url", PUBLIC_URL, "--tenant", "acme", *FAST], env)

    assert code == 1
    assert len(plug.standin.requests) == 1
    err = capsys.readouterr().err
    assert "401" in err
    assert "Authorization header is missing or the token is not valid" in err
    assert "not-the-token" not in err
    assert len(err.strip().splitlines()) == 1


class PostingPlugApi(PlugApi):
    _method = "POST"


class PlainTextPlugApi(PlugApi):
    _content_type = "text/plain"


@pytest.mark.parametrize(
    ("api_class", "status", "words"),
    [(PostingPlugApi, 405, "must be called with PUT"), (PlainTextPlugApi, 415, "application/json")],
)
async def test_wrong_method_or_content_type_is_explained_and_not_retried(
    plug: Plug, api_class: type[PlugApi], status: int, words: str
) -> None:
    urls = webhook_urls(PUBLIC_URL, ACME_TOKEN)
    async with aiohttp.ClientSession() as session:
        api = api_class(session, plug.url, PLUG_TOKEN, attempts=4, backoff_s=0)
        with pytest.raises(PlugRefused) as caught:
            await api.update_webhooks(urls)

    assert caught.value.status == status
    assert words in caught.value.explanation
    assert not caught.value.retriable
    assert len(plug.standin.requests) == 1


async def test_other_refusals_show_plugs_body(plug: Plug) -> None:
    urls = {webhook: f"http://plain.example/{webhook.value}" for webhook in Webhook}
    async with aiohttp.ClientSession() as session:
        with pytest.raises(PlugRefused) as caught:
            await PlugApi(session, plug.url, PLUG_TOKEN, backoff_s=0).update_webhooks(urls)

    assert caught.value.status == 400
    assert "finishAttendance is not HTTPS" in caught.value.explanation
    assert len(plug.standin.requests) == 1


async def test_standin_refuses_a_body_missing_a_field(plug: Plug) -> None:
    body = expected_body()
    del body["whenDisconnecting"]
    headers = {"Authorization": PLUG_TOKEN}
    async with (
        aiohttp.ClientSession() as session,
        session.put(plug.url + UPDATE_WEBHOOKS_PATH, json=body, headers=headers) as response,
    ):
        assert response.status == 400
        assert "whenDisconnecting" in await response.text()


@pytest.mark.parametrize(
    ("argv", "env_change", "words"),
    [
        (["--public-url", "http://ingest.example.com", "--tenant", "acme"], {}, "not HTTPS"),
        (["--public-url", "https://ingest.example.com?x=1", "--tenant", "acme"], {}, "query"),
        (["--public-url", "https:///webhooks", "--tenant", "acme"], {}, "no host"),
        (["--public-url", PUBLIC_URL, "--tenant", "initech"], {}, "unknown tenant 'initech'"),
        (["--public-url", PUBLIC_URL, "--tenant", "acme"], {"PLUG_API_TOKEN": ""}, "missing"),
        (["--public-url", PUBLIC_URL, "--tenant", "acme"], {"PLUG_PIPELINE_TOKENS": ""}, "no"),
        (
            ["--public-url", PUBLIC_URL, "--tenant", "acme"],
            {"PLUG_API_TOKEN": "Bearer abc"},
            "without 'Bearer'",
        ),
        (
            ["--public-url", PUBLIC_URL, "--tenant", "acme", "--plug-api-url", "http://plug.test"],
            {},
            "must be https",
        ),
        (["--public-url", PUBLIC_URL, "--tenant", "acme", "--attempts", "0"], {}, "attempts"),
    ],
)
async def test_bad_settings_exit_2_before_calling_plug(
    plug: Plug,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env_change: dict[str, str],
    words: str,
) -> None:
    env = plug.env(**env_change)
    if env_change.get("PLUG_API_TOKEN") == "":
        del env["PLUG_API_TOKEN"]

    assert await register(argv, env) == 2

    assert plug.standin.requests == []
    err = capsys.readouterr().err
    assert words in err
    assert len(err.strip().splitlines()) == 1


async def test_plug_token_from_a_flag_file(plug: Plug, tmp_path: Path) -> None:
    token_file = tmp_path / "plug-token"
    token_file.write_text(PLUG_TOKEN + "\n")
    env = plug.env()
    del env["PLUG_API_TOKEN"]
    argv = ["--public-url", PUBLIC_URL, "--tenant", "acme", "--plug-api-token-file"]

    assert await register([*argv, str(token_file)], env) == 0
    assert plug.standin.requests[0].headers["Authorization"] == PLUG_TOKEN


async def test_plug_token_file_from_env_wins_over_the_variable(plug: Plug, tmp_path: Path) -> None:
    token_file = tmp_path / "plug-token"
    token_file.write_text(PLUG_TOKEN)
    env = plug.env(PLUG_API_TOKEN="stale", PLUG_API_TOKEN_FILE=str(token_file))

    assert await register(["--public-url", PUBLIC_URL, "--tenant", "acme"], env) == 0
    assert plug.standin.requests[0].headers["Authorization"] == PLUG_TOKEN


async def test_unreadable_plug_token_file_exits_2(
    plug: Plug, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--public-url", PUBLIC_URL, "--tenant", "acme"]
    missing = str(tmp_path / "absent")
    assert await register([*argv, "--plug-api-token-file", missing], plug.env()) == 2
    assert "cannot read" in capsys.readouterr().err
    assert plug.standin.requests == []


async def test_tenant_tokens_from_a_file(plug: Plug, tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text("acme=fromF1le\n")
    env = plug.env()
    argv = ["--public-url", PUBLIC_URL, "--tenant", "acme", "--tokens-file", str(tokens_file)]

    assert await register(argv, env) == 0
    body = msgspec.json.decode(plug.standin.requests[0].body)
    assert body == expected_body(token="fromF1le")


async def test_server_errors_are_retried_until_success(plug: Plug) -> None:
    plug.standin.fail_first = 2
    argv = ["--public-url", PUBLIC_URL, "--tenant", "acme", "--attempts", "3", *FAST]

    assert await register(argv, plug.env()) == 0
    assert len(plug.standin.requests) == 3
    assert len({(r.method, r.body) for r in plug.standin.requests}) == 1


async def test_server_errors_give_up_after_the_attempts(
    plug: Plug, capsys: pytest.CaptureFixture[str]
) -> None:
    plug.standin.fail_first = 10
    argv = ["--public-url", PUBLIC_URL, "--tenant", "acme", "--attempts", "3", *FAST]

    assert await register(argv, plug.env()) == 1
    assert len(plug.standin.requests) == 3
    err = capsys.readouterr().err
    assert "server error (HTTP 503)" in err
    assert "temporarily unavailable" in err
    assert "after 3 attempts" in err


async def test_client_errors_are_never_retried(plug: Plug) -> None:
    plug.standin.fail_first, plug.standin.fail_status = 10, 429
    argv = ["--public-url", PUBLIC_URL, "--tenant", "acme", "--attempts", "4", *FAST]

    assert await register(argv, plug.env()) == 1
    assert len(plug.standin.requests) == 1


async def test_a_timeout_is_retried(plug: Plug) -> None:
    plug.standin.hang_first = 1
    argv = ["--public-url", PUBLIC_URL, "--tenant", "acme", "--timeout", "0.3", *FAST]

    assert await register(argv, plug.env()) == 0
    assert len(plug.standin.requests) == 2


async def test_unreachable_plug_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    closed = f"http://127.0.0.1:{unused_port()}"
    env = {"PLUG_PIPELINE_TOKENS": f"acme={ACME_TOKEN}", "PLUG_API_TOKEN": PLUG_TOKEN}
    argv = ["--public-url", PUBLIC_URL, "--tenant", "acme", "--plug-api-url", closed]

    assert await register([*argv, "--attempts", "2", *FAST], env) == 1
    err = capsys.readouterr().err
    assert "cannot reach Plug" in err
    assert "after 2 attempts" in err
    assert len(err.strip().splitlines()) == 1


async def test_dry_run_masks_secrets_and_sends_nothing(
    plug: Plug, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--public-url", PUBLIC_URL, "--tenant", "acme", "--dry-run"]

    assert await register(argv, plug.env()) == 0

    assert plug.standin.requests == []
    out = capsys.readouterr().out
    head, _, body = out.partition("\n\n")
    assert head.splitlines() == [
        f"PUT {plug.url}{UPDATE_WEBHOOKS_PATH}",
        "Authorization: ****zX",
        "Content-Type: application/json",
    ]
    shown = msgspec.json.decode(body)
    assert list(shown) == list(PLUG_FIELDS)
    assert shown["messageStatus"] == f"{PUBLIC_URL}/webhooks/message-status?token=****ac"
    for secret in (PLUG_TOKEN, ACME_TOKEN, quote(ACME_TOKEN, safe="")):
        assert secret not in out


# --- URLs Plug cannot reach --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "addresses", "words"),
    [
        ("https://localhost", None, "this machine"),
        ("https://api.localhost", None, "this machine"),
        ("https://127.0.0.1", None, "IP address"),
        ("https://[::1]:8443", None, "IP address"),
        ("https://93.184.215.14", None, "IP address"),
        ("https://loop.example", ["127.0.1.1"], "not a public"),
        ("https://lan.example", ["10.1.2.3"], "not a public"),
        ("https://lan.example", ["192.168.0.7"], "not a public"),
        ("https://lan.example", ["172.20.0.1"], "not a public"),
        ("https://cgnat.example", ["100.64.0.9"], "not a public"),
        ("https://link.example", ["169.254.169.254"], "not a public"),
        ("https://link6.example", ["fe80::1%eth0"], "not a public"),
        ("https://ula.example", ["fd00::1"], "not a public"),
        ("https://mixed.example", ["93.184.215.14", "10.0.0.1"], "not a public"),
        ("https://nowhere.example", [], "does not resolve"),
        ("https://gone.example", OSError("Name or service not known"), "does not resolve"),
    ],
)
def test_urls_plug_cannot_reach_are_refused(
    url: str, addresses: list[str] | OSError | None, words: str
) -> None:
    def resolve(host: str) -> list[str]:
        if isinstance(addresses, OSError):
            raise addresses
        assert addresses is not None, f"{host} should be refused before resolving"
        return addresses

    with pytest.raises(ConfigError, match=words) as caught:
        check_reachable_from_plug(url, resolve)
    assert "--allow-private" in str(caught.value)


def test_a_public_name_is_accepted() -> None:
    check_reachable_from_plug(PUBLIC_URL, public_dns)
    check_reachable_from_plug("https://v6.example", lambda _h: ["2606:4700::1111"])


async def test_a_private_url_exits_2_unless_allowed(plug: Plug) -> None:
    argv = ["--public-url", "https://127.0.0.1:8443", "--tenant", "acme"]
    assert await register(argv, plug.env()) == 2
    assert plug.standin.requests == []
    assert await register([*argv, "--allow-private"], plug.env()) == 0
    assert len(plug.standin.requests) == 1
