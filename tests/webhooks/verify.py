#!/usr/bin/env python3
"""Verifies webhook messages with a third party's Standard Webhooks library.

Reads JSON lines on stdin, each {"secret", "id", "timestamp", "signature",
"body"} (body as text), and prints one line per message: "ok" when the
`standardwebhooks` package (PyPI, the Standard Webhooks project's Python
library) verifies it against the secret at the current time, else
"refused: <why>".
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

for line in sys.stdin:
    m = json.loads(line)
    headers = {
        "webhook-id": m["id"],
        "webhook-timestamp": str(m["timestamp"]),
        "webhook-signature": m["signature"],
    }
    try:
        Webhook(m["secret"]).verify(m["body"].encode(), headers, json_parse=False)
        print("ok")
    except WebhookVerificationError as e:
        print(f"refused: {e}")
