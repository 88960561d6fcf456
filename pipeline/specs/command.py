"""``plug-pipeline schemas``: write every document the code defines into a directory."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "schemas", help="write the JSON Schema of every topic and the AsyncAPI document"
    )
    p.add_argument("--out", default="schemas", help="directory to write into (default: schemas)")
    p.add_argument("--prefix", default="plug", help="topic prefix used in file names")
    p.set_defaults(func=_command)


def _command(args: argparse.Namespace) -> int:
    from pipeline.specs.asyncapi import write_asyncapi
    from pipeline.specs.jsonschema import write_schemas
    from pipeline.specs.openapi import write_openapi

    for path in write_schemas(args.out, args.prefix):
        print(path)
    print(write_asyncapi(args.out, args.prefix))
    print(write_openapi(args.out))
    return 0
