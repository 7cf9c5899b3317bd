"""Reads a mail (an .eml file) with Python's own parser, not ours, and prints what the
tests check as JSON: headers (RFC 2047 words decoded), the top-level content type, and
each part's content type, charset and decoded text."""

import email
import json
import sys
from email import policy

with open(sys.argv[1], "rb") as f:
    message = email.message_from_binary_file(f, policy=policy.strict)
parts = list(message.iter_parts()) if message.is_multipart() else [message]
print(
    json.dumps(
        {
            "headers": {name: str(value) for name, value in message.items()},
            "content_type": message.get_content_type(),
            "defects": [str(d) for d in message.defects],
            "parts": [
                {
                    "content_type": part.get_content_type(),
                    "charset": part.get_content_charset(),
                    "text": part.get_content(),
                    "defects": [str(d) for d in part.defects],
                }
                for part in parts
            ],
        }
    )
)
