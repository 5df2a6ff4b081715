"""When a student last handed in each lab, asked of the course exchange.

The exchange keeps every hand-in, stamped with its own clock (introdl/hub/exchange_store.py). The
check service asks it `GET api/handins/<student>` with the check service's own hub token, which the
exchange accepts from this service only (exchange_service.HandinTimes): a student's token is
refused there, and the check service asks only about the hub user of the page it serves, so a
student can neither read another's times nor forge their own (nothing they send carries a time).
Why not read the exchange's SQLite file: it belongs to the exchange's own Unix user, in WAL mode,
and a root reader could leave a root-owned `-shm` file that the exchange can no longer write.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

log = logging.getLogger("introdl.checkwork")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"  # the exchange's (nbgrader's) format
TIMEOUT = 5.0  # seconds: a slow exchange leaves the late status out, never the page


class ExchangeHandins:
    """The exchange at URL (its service prefix, e.g. http://127.0.0.1:10101/services/exchange/),
    asked with TOKEN (the check service's own hub token)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/") + "/"
        self.token = token

    async def latest(self, student: str) -> dict[str, datetime] | None:
        """{lab: latest hand-in time (UTC)} of STUDENT; None when the exchange did not answer."""
        request = HTTPRequest(
            f"{self.url}api/handins/{quote(student, safe='')}",
            headers={"Authorization": f"token {self.token}"},
            request_timeout=TIMEOUT,
            connect_timeout=TIMEOUT,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except OSError as err:
            log.warning("the exchange at %s did not answer: %s", self.url, err)
            return None
        if response.code != 200:
            log.warning("the exchange answered %s for %s's hand-in times", response.code, student)
            return None
        times = json.loads(response.body)
        return {
            lab: datetime.strptime(stamp, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
            for lab, stamp in times.items()
        }
