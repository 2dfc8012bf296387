"""Prints template.yaml after the SAM transform, as CloudFormation receives it (JSON).

Usage: translate.py TEMPLATE. Offline: local CodeUri values are replaced with an S3
placeholder the way `sam validate` does, and managed policy names are not looked up.
"""

import json
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template names managed policies by ARN, if at all: nothing to look up."""

    def load(self):
        return {}


def main(path):
    with open(path) as f:
        template = yaml_parse(f.read())
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(
            props.get("CodeUri"), str
        ):
            props["CodeUri"] = "s3://bucket/code.zip"
    json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
