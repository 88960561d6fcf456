"""``plug-pipeline register-webhooks``: point Plug's seven webhooks at this ingress.

Exit codes: 0 done, 1 Plug refused or could not be reached, 2 usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import SplitResult, quote, urlsplit

import aiohttp
import msgspec

from pipeline.config import load_tokens, read_secret_file
from pipeline.errors import ConfigError
from pipeline.plug.api import (
    UPDATE_WEBHOOKS_PATH,
    PlugApi,
    PlugApiError,
    PlugRefused,
    update_webhooks_body,
)
from pipeline.webhooks import Webhook

COMMAND = "register-webhooks"
DEFAULT_PLUG_API_URL = "https://www.plugchat.com.br"
EXIT_OK, EXIT_PLUG, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        COMMAND,
        help="point Plug's seven webhooks at this ingress",
        description=(
            "Set the seven Plug webhook URLs of a company to {public-url}/webhooks/{event}"
            "?token={tenant token}, with Plug's PUT /api/integrations/update-webhooks. "
            "Plug's API token comes from PLUG_API_TOKEN, or from a file named by "
            "PLUG_API_TOKEN_FILE or --plug-api-token-file."
        ),
    )
    _add_arguments(parser)
    parser.set_defaults(func=run)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--public-url",
        required=True,
        help="the HTTPS base URL where Plug reaches this ingress, e.g. https://ingest.example.com",
    )
    parser.add_argument("--tenant", required=True, help="the tenant whose token goes into the URLs")
    parser.add_argument(
        "--tokens-file",
        help="file of tenant=token pairs (default: PLUG_PIPELINE_TOKENS_FILE, "
        "else PLUG_PIPELINE_TOKENS)",
    )
    parser.add_argument(
        "--plug-api-url",
        help=f"Plug's API base URL (default: PLUG_API_URL, else {DEFAULT_PLUG_API_URL})",
    )
    # No flag for the token itself: a command line is readable by every local user.
    parser.add_argument(
        "--plug-api-token-file",
        help="file holding Plug's API token (default: PLUG_API_TOKEN_FILE, else PLUG_API_TOKEN)",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for each attempt (10)"
    )
    parser.add_argument(
        "--attempts",
        type=int,
        default=4,
        help="attempts on network errors and Plug server errors (4)",
    )
    parser.add_argument(
        "--retry-delay",
        type=float,
        default=0.5,
        help="seconds before the first retry, doubled at each retry (0.5)",
    )
    parser.add_argument(
        "--allow-private",
        action="store_true",
        help="accept a public URL on an IP address, or one resolving to a loopback, private "
        "or link-local address, or not resolving at all (tests; Plug cannot reach those)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the request, with secrets masked, and send nothing",
    )


Resolver = Callable[[str], list[str]]


def resolve_host(host: str) -> list[str]:
    """The host's addresses, as this machine's resolver gives them (OSError if none)."""
    infos = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    resolve: Resolver = resolve_host,
) -> int:
    """Run the command on its own, without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog=f"plug-pipeline {COMMAND}")
    _add_arguments(parser)
    return run(parser.parse_args(argv), environ, resolve)


def run(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    resolve: Resolver = resolve_host,
) -> int:
    env = os.environ if environ is None else environ
    try:
        public_url = validate_public_url(args.public_url)
        if not args.allow_private:
            check_reachable_from_plug(public_url, resolve)
        plug_api_url = validate_plug_api_url(
            args.plug_api_url or env.get("PLUG_API_URL") or DEFAULT_PLUG_API_URL
        )
        tenant_token = _tenant_token(env, args.tokens_file, args.tenant)
        plug_token = _plug_api_token(env, args.plug_api_token_file)
        _check_retry_settings(args)
    except ConfigError as exc:
        print(f"plug-pipeline {COMMAND}: {exc}", file=sys.stderr)
        return EXIT_USAGE

    urls = webhook_urls(public_url, tenant_token)
    if args.dry_run:
        print(_render_request(plug_api_url, plug_token, public_url, tenant_token))
        print("dry run: nothing was sent to Plug", file=sys.stderr)
        return EXIT_OK

    try:
        asyncio.run(
            _update(
                plug_api_url,
                plug_token,
                urls,
                timeout_s=args.timeout,
                attempts=args.attempts,
                backoff_s=args.retry_delay,
            )
        )
    except PlugApiError as exc:
        print(f"plug-pipeline {COMMAND}: {_describe(exc)}", file=sys.stderr)
        return EXIT_PLUG
    print(
        f"The seven Plug webhooks now point at {public_url}/webhooks/ for tenant {args.tenant!r}."
    )
    return EXIT_OK


async def _update(
    plug_api_url: str,
    plug_token: str,
    urls: Mapping[Webhook, str],
    *,
    timeout_s: float,
    attempts: int,
    backoff_s: float,
) -> None:
    async with aiohttp.ClientSession() as session:
        api = PlugApi(
            session,
            plug_api_url,
            plug_token,
            timeout_s=timeout_s,
            attempts=attempts,
            backoff_s=backoff_s,
        )
        await api.update_webhooks(urls)


def _describe(exc: PlugApiError) -> str:
    text = str(exc)
    if isinstance(exc, PlugRefused) and exc.status == 401:
        text += " (Plug's token comes from PLUG_API_TOKEN or PLUG_API_TOKEN_FILE, without 'Bearer')"
    if exc.attempts > 1:
        text += f" (gave up after {exc.attempts} attempts)"
    return text


def webhook_urls(public_url: str, token: str) -> dict[Webhook, str]:
    """The seven URLs Plug should call: ``{public_url}/webhooks/{event}?token=...``."""
    return _urls(validate_public_url(public_url), quote(token, safe=""))


def _urls(base: str, encoded_token: str) -> dict[Webhook, str]:
    return {
        webhook: f"{base}/webhooks/{webhook.value}?token={encoded_token}" for webhook in Webhook
    }


def validate_public_url(url: str) -> str:
    """The public base URL, checked and without a trailing slash; ConfigError if unusable."""
    parts = _split_url(url, "public URL")
    if parts.scheme.lower() != "https":
        raise ConfigError(f"public URL {url!r} is not HTTPS: Plug only calls https:// webhooks")
    return _base(parts)


def check_reachable_from_plug(public_url: str, resolve: Resolver = resolve_host) -> None:
    """Refuse a URL Plug, on the internet, can never call: ConfigError naming the reason.

    An IP-literal host (a name survives a change of address, and certificates name hosts),
    a name that does not resolve, or one resolving to any loopback, private, link-local,
    shared, reserved or multicast address.
    """
    host = urlsplit(public_url).hostname or ""
    hint = "(--allow-private accepts it, for tests)"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise ConfigError(f"public URL host {host} is an IP address: give Plug a name {hint}")
    if host == "localhost" or host.endswith(".localhost"):
        raise ConfigError(f"public URL host {host} is this machine: Plug cannot reach it {hint}")
    try:
        addresses = resolve(host)
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"public URL host {host} does not resolve: {exc} {hint}") from exc
    if not addresses:
        raise ConfigError(f"public URL host {host} does not resolve {hint}")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone
        if not address.is_global or address.is_multicast:
            raise ConfigError(
                f"public URL host {host} resolves to {address}, which is not a public "
                f"address: Plug cannot reach it {hint}"
            )


def validate_plug_api_url(url: str) -> str:
    """Plug's API base URL; plain HTTP only to this machine, since it carries the token."""
    parts = _split_url(url, "Plug API URL")
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and _is_loopback(parts.hostname or "")):
        raise ConfigError(
            f"Plug API URL {url!r} must be https:// (plain http only to localhost), "
            "since it carries Plug's token"
        )
    return _base(parts)


def _split_url(url: str, what: str) -> SplitResult:
    if not url.isascii() or any(not c.isprintable() or c.isspace() for c in url):
        raise ConfigError(
            f"{what} {url!r} has spaces, control or non-ASCII characters: "
            "use its percent-encoded (punycode) form"
        )
    try:
        parts = urlsplit(url)
        # Reading the port is what makes urlsplit check it.
        parts.port  # noqa: B018
    except ValueError as exc:
        raise ConfigError(f"{what} {url!r} is malformed: {exc}") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise ConfigError(f"{what} {url!r} is not an absolute https://host URL")
    if not parts.hostname:
        raise ConfigError(f"{what} {url!r} has no host")
    if "@" in parts.netloc:
        raise ConfigError(f"{what} {url!r} must not contain a user or password")
    # urlsplit forgets an empty "?" or "#"; the raw text does not.
    if "?" in url or "#" in url:
        raise ConfigError(f"{what} {url!r} must not have a query or a fragment")
    return parts


def _base(parts: SplitResult) -> str:
    return f"{parts.scheme.lower()}://{parts.netloc}{parts.path.rstrip('/')}"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tenant_token(environ: Mapping[str, str], tokens_file: str | None, tenant: str) -> str:
    tokens = load_tokens(environ, tokens_file)
    if not tokens:
        raise ConfigError(
            "no tenant tokens are configured: set PLUG_PIPELINE_TOKENS, "
            "PLUG_PIPELINE_TOKENS_FILE or --tokens-file"
        )
    if tenant not in tokens:
        known = ", ".join(sorted(tokens))
        raise ConfigError(f"unknown tenant {tenant!r}: the configured tenants are {known}")
    # While a token is rotated the tenant has several: Plug gets the newest (the last listed).
    return tokens[tenant][-1]


def _plug_api_token(environ: Mapping[str, str], token_file: str | None) -> str:
    path = token_file or environ.get("PLUG_API_TOKEN_FILE")
    if path:
        token, origin = read_secret_file(path, "Plug API token file"), path
    else:
        token, origin = environ.get("PLUG_API_TOKEN", "").strip(), "PLUG_API_TOKEN"
    if not token:
        raise ConfigError(
            f"Plug's API token is missing: {origin} is empty"
            if path or "PLUG_API_TOKEN" in environ
            else "Plug's API token is missing: set PLUG_API_TOKEN or PLUG_API_TOKEN_FILE"
        )
    if token.lower().startswith("bearer "):
        raise ConfigError(f"{origin}: give Plug's bare token, without 'Bearer'")
    # It goes verbatim into a header, where a line break would inject another one.
    if any(not c.isprintable() or c.isspace() for c in token):
        raise ConfigError(f"{origin}: Plug's API token has spaces or control characters")
    return token


def _check_retry_settings(args: argparse.Namespace) -> None:
    if args.timeout <= 0:
        raise ConfigError("--timeout must be positive")
    if args.attempts < 1:
        raise ConfigError("--attempts must be at least 1")
    if args.retry_delay < 0:
        raise ConfigError("--retry-delay must not be negative")


def mask(secret: str, visible: int = 2) -> str:
    """``****`` and at most the last ``visible`` characters, none for a short secret."""
    # Showing the tail of a short secret would give away too large a share of it.
    if len(secret) < 4 * visible or visible <= 0:
        return "****"
    return "****" + secret[-visible:]


def _render_request(plug_api_url: str, plug_token: str, public_url: str, tenant_token: str) -> str:
    masked_urls = _urls(public_url, quote(mask(tenant_token), safe="*"))
    body = msgspec.json.format(msgspec.json.encode(update_webhooks_body(masked_urls)), indent=2)
    return "\n".join(
        [
            f"PUT {plug_api_url}{UPDATE_WEBHOOKS_PATH}",
            f"Authorization: {mask(plug_token)}",
            "Content-Type: application/json",
            "",
            body.decode(),
        ]
    )
