#!/usr/bin/env python3
"""Reads a Containerfile with dockerfile-parse (a real parser, not ours) and
prints what the tests check, as JSON: the stages, and of the final stage
its user, environment, ports, health check, entrypoint, command and copies.

Usage: facts.py CONTAINERFILE
"""

import json
import sys

from dockerfile_parse import DockerfileParser

parser = DockerfileParser(fileobj=open(sys.argv[1], "rb"))
stages, final = [], []
for item in parser.structure:
    if item["instruction"] == "FROM":
        words = item["value"].split()
        stages.append({"image": words[0], "as": words[2] if len(words) > 2 and words[1].upper() == "AS" else None})
        final = []
    final.append(item)


def values(instruction):
    return [i["value"] for i in final if i["instruction"] == instruction]


print(
    json.dumps(
        {
            "stages": stages,
            "user": (values("USER") or [None])[-1],
            "env": parser.envs,
            "expose": values("EXPOSE"),
            "healthcheck": (values("HEALTHCHECK") or [None])[-1],
            "entrypoint": (values("ENTRYPOINT") or [None])[-1],
            "cmd": (values("CMD") or [None])[-1],
            "stopsignal": (values("STOPSIGNAL") or [None])[-1],
            "copies": values("COPY"),
            "runs": values("RUN"),
        }
    )
)
