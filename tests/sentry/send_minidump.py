"""Sends a minidump to a Sentry DSN as a Sentry SDK does: the official Python
SDK (sentry-sdk, from PyPI) sends, through its own transport (DSN auth,
compression), one envelope with the event and the dump as an attachment of
type event.minidump (the attachment type sentry-native and the Electron SDK
use; this SDK's attachment helper has no parameter for it, so the envelope is
built with the SDK's own Envelope and Item types).

    python send_minidump.py DSN DUMP RELEASE [TAGS_JSON]

TAGS_JSON, when given, is a JSON object set as the event's tags.
"""
import json
import sys
import uuid

import sentry_sdk
from sentry_sdk.envelope import Envelope, Item


def main() -> None:
    dsn, dump, release = sys.argv[1:4]
    sentry_sdk.init(dsn=dsn, release=release, default_integrations=False)
    with open(dump, "rb") as f:
        data = f.read()
    event_id = uuid.uuid4().hex
    event = {
        "event_id": event_id,
        "level": "fatal",
        "platform": "native",
        "release": release,
        "server_name": sentry_sdk.get_client().options["server_name"],
    }
    if len(sys.argv) > 4:
        event["tags"] = json.loads(sys.argv[4])
    envelope = Envelope(headers={"event_id": event_id})
    envelope.add_event(event)
    envelope.add_item(
        Item(
            payload=data,
            type="attachment",
            filename="crash.dmp",
            headers={"attachment_type": "event.minidump"},
        )
    )
    sentry_sdk.get_client().transport.capture_envelope(envelope)
    sentry_sdk.flush(timeout=30)


if __name__ == "__main__":
    main()
