"""One running emulator: its registry, state, journal, fault dice and webhook dispatcher.

Tests reach it as ``served.emulator`` to read the journal, flip faults or inspect a BSD without
going through HTTP; the GraphQL resolvers and the admin API share the same object.
"""

from __future__ import annotations

import random
import time
from collections import deque
from typing import Any

from graphql import GraphQLError

from .config import EmulatorConfig, FaultConfig
from .gql_errors import forbidden, not_found, unauthenticated
from .rules_common import WasteCatalog
from .seed import Registry, User, add_group_token, demo_registry, load_seed
from .store import Store, now_iso
from .webhooks import WebhookDispatcher

__all__ = ["Emulator", "org_ids_on"]

KIND_LABELS = {"BSDD": "BSD", "BSDA": "BSDA", "BSDASRI": "BSDASRI", "BSFF": "BSFF", "BSVHU": "BSVHU",
               "BSPAOH": "BSPAOH"}


def org_ids_on(bsd: Any) -> set[str]:
    """Every SIRET or VAT number named anywhere on a BSD (companies, eco-organisme, intermediaries)."""
    found: set[str] = set()
    stack = [bsd]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key.startswith("_"):
                    continue
                if key in ("siret", "vatNumber") and isinstance(value, str) and value:
                    found.add(value)
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return found


class Emulator:
    """State and controls of one emulator instance."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.registry = demo_registry() if self.config.include_demo_seed else Registry()
        if self.config.seed_path is not None:
            load_seed(self.config.seed_path, self.registry)
        if self.config.group_companies:
            add_group_token(self.registry, self.config.group_companies, self.config.group_token)
        self.catalog = (WasteCatalog.from_file(self.config.waste_codes_path)
                        if self.config.waste_codes_path else WasteCatalog.packaged())
        self.store = Store(self.config.sqlite_path)
        self.journal: deque[dict[str, Any]] = deque(maxlen=self.config.journal_size)
        self.faults: FaultConfig = self.config.faults.model_copy(deep=True)
        self.rng = random.Random(self.config.random_seed)
        self.started_at = time.monotonic()
        self.webhooks = WebhookDispatcher(self.store, self.config.webhooks)
        self._rate: dict[str, tuple[float, int]] = {}
        self._orgs: dict[str, tuple[int, frozenset[str]]] = {}

    # --- lifecycle of the instance ----------------------------------------------------------------

    def start(self) -> None:
        self.webhooks.start()

    def stop(self) -> None:
        self.webhooks.stop()
        self.store.close()

    def reset(self) -> None:
        """Forget every BSD, log, webhook, journal entry and fault; keep users and companies."""
        self.store.reset()
        self.journal.clear()
        self.faults = self.config.faults.model_copy(deep=True)
        self._rate.clear()

    # --- rate limit -------------------------------------------------------------------------------

    def hit_rate_limit(self, client: str) -> tuple[bool, int, int]:
        """Count one request for ``client``: (allowed, remaining, reset epoch seconds)."""
        window = self.config.rate_window_seconds
        now = time.time()
        start, count = self._rate.get(client, (now, 0))
        if now - start >= window:
            start, count = now, 0
        count += 1
        self._rate[client] = (start, count)
        remaining = max(0, self.config.rate_limit - count)
        return count <= self.config.rate_limit, remaining, int(start + window + 0.999)

    # --- access rules -----------------------------------------------------------------------------

    @staticmethod
    def require_user(context: dict[str, Any]) -> User:
        user = context.get("user")
        if user is None:
            raise unauthenticated()
        return user  # type: ignore[no-any-return]

    def check_access(self, user: User, bsd: dict[str, Any]) -> None:
        """FORBIDDEN unless one of the user's companies is on the BSD (drafts: on its creator's side)."""
        mine = set(user.roles)
        draft_owners = bsd.get("_draftOwners")
        if draft_owners is not None and (bsd.get("isDraft") or bsd.get("status") == "DRAFT"):
            if mine & set(draft_owners):
                return
        elif mine & org_ids_on(bsd):
            return
        raise forbidden("Vous n'êtes pas autorisé à accéder à ce bordereau")

    def orgs_of(self, bsd: dict[str, Any]) -> frozenset[str]:
        """``org_ids_on(bsd)``, remembered until the BSD is saved again (lists of many BSDs)."""
        rev = bsd.get("_rev", 0)
        known = self._orgs.get(bsd["id"])
        if known is None or known[0] != rev:
            known = (rev, frozenset(org_ids_on(bsd)))
            self._orgs[bsd["id"]] = known
        return known[1]

    def load(self, kind: str, key: str, user: User) -> dict[str, Any]:
        bsd = self.store.get(kind, key)
        if bsd is None:
            raise not_found(KIND_LABELS[kind], key)
        self.check_access(user, bsd)
        return bsd

    @staticmethod
    def check_creator(user: User, data: dict[str, Any]) -> None:
        if not set(user.roles) & org_ids_on(data):
            raise forbidden("Vous ne pouvez pas créer un bordereau sur lequel votre entreprise "
                            "n'apparait pas")

    # --- changes ---------------------------------------------------------------------------------

    def created(self, kind: str, bsd: dict[str, Any]) -> dict[str, Any]:
        self.store.insert(kind, bsd)
        self._notify(bsd, "CREATED")
        return bsd

    def touch(self, bsd: dict[str, Any], action: str = "UPDATED") -> dict[str, Any]:
        """Record a change: bump ``updatedAt``, persist, tell the webhooks."""
        bsd["updatedAt"] = now_iso()
        self.store.save(bsd)
        self._notify(bsd, action)
        return bsd

    def _notify(self, bsd: dict[str, Any], action: str) -> None:
        self.webhooks.notify(org_ids_on(bsd), action, bsd.get("readableId") or bsd["id"])

    def status_log(self, bsd: dict[str, Any], user: User | None, fields: dict[str, Any]) -> None:
        who = {"id": user.id, "email": user.email} if user else {"id": "emulator", "email": "emulator@local"}
        self.store.add_status_log(bsd, bsd["status"], who, fields)

    def invalid_transition(self) -> GraphQLError:
        return GraphQLError("Vous ne pouvez pas passer ce bordereau à l'état souhaité.",
                            extensions={"code": "BAD_USER_INPUT"})
