"""Options and the ``target`` fixture of the conformance suite (see docs/conformance.md).

    pytest tests/conformance                                   # against the in-process emulator
    pytest tests/conformance --target https://api.sandbox.trackdechets.beta.gouv.fr \\
        --token-env TD_SANDBOX_TOKEN --producer-siret ... --destination-siret ... --transporter-siret ...
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from .target import Company, Target

PRODUCTION_HOSTS = {"api.trackdechets.beta.gouv.fr", "trackdechets.beta.gouv.fr"}
CONFORMANCE_TOKEN = "conformance-token-many-companies"
COMPANIES = 120
"""Companies of the emulator's conformance user besides the producer: a group's account with many
establishments, so `forms` needs its `siret` argument and `myCompanies` has pages to walk."""


def _valid_sirets(count: int) -> list[str]:
    """``count`` SIRETs passing Luhn (prefix 421, never ``42100000000040``, the nobody's SIRET)."""
    from td_emulator.validators import is_siret

    found: list[str] = []
    for body in range(1, 10 * count):
        base = f"421{body:010d}"
        siret = next(base + str(d) for d in range(10) if is_siret(base + str(d)))
        if siret != "42100000000040":
            found.append(siret)
        if len(found) == count:
            break
    return found


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "platform conformance suite (tests/conformance)")
    group.addoption("--target", default=None, help="GraphQL URL to test instead of the in-process emulator")
    group.addoption("--token-env", default="TD_CONFORMANCE_TOKEN",
                    help="environment variable holding the target's API token (default: %(default)s)")
    group.addoption("--other-token-env", default=None,
                    help="variable holding a token of an unrelated company (FORBIDDEN checks)")
    group.addoption("--producer-siret", default=None, help="a company of the token's user (BSDD emitter)")
    group.addoption("--destination-siret", default=None, help="a registered destination (waste processor)")
    group.addoption("--transporter-siret", default=None, help="a registered transporter")


def _seed(path: Path, producer: str) -> Path:
    extra = _valid_sirets(COMPANIES)
    companies = "\n".join(
        f'[[companies]]\nsiret = "{siret}"\nname = "Filiale {index}"\ncompanyTypes = ["PRODUCER"]\n'
        for index, siret in enumerate(extra, start=1)
    )
    roles = ", ".join(f'"{siret}" = "MEMBER"' for siret in (producer, *extra))
    path.write_text(f'{companies}\n[[users]]\ntoken = "{CONFORMANCE_TOKEN}"\n'
                    f'email = "conformite@example.org"\ncompanies = {{ {roles} }}\n', "utf-8")
    return path


def _foreign(config: pytest.Config, url: str) -> Target:
    if (urlparse(url).hostname or "") in PRODUCTION_HOSTS:
        pytest.exit("the conformance suite creates and deletes BSDs: point it at the sandbox, not production",
                    returncode=2)
    token_env = config.getoption("--token-env")
    token = os.environ.get(token_env, "")
    if not token:
        pytest.exit(f"--target {url}: set the API token in ${token_env} (or name the variable with "
                    "--token-env)", returncode=2)
    other_env = config.getoption("--other-token-env")

    def company(option: str) -> Company | None:
        siret = config.getoption(option)
        return Company(siret) if siret else None

    return Target(url, token, other_token=os.environ.get(other_env) if other_env else None,
                  producer=company("--producer-siret"), destination=company("--destination-siret"),
                  transporter=company("--transporter-siret"))


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    url = request.config.getoption("--target")
    if url:
        foreign = _foreign(request.config, url)
        try:
            yield foreign
        finally:
            foreign.cleanup()
        return
    from td_emulator.config import EmulatorConfig, WebhookConfig
    from td_emulator.demo_seed import DEMO_ACCOUNTS, OTHER_TOKEN
    from td_emulator.testing import serve_in_thread

    demo = {account.key: account for account in DEMO_ACCOUNTS}

    def company(key: str) -> Company:
        a = demo[key]
        return Company(a.siret, a.name, a.address, a.contact, a.phone, a.mail)

    seed = _seed(tmp_path_factory.mktemp("conformance") / "seed.toml", demo["producer"].siret)
    config = EmulatorConfig(admin_enabled=True, seed_path=seed, webhooks=WebhookConfig(enabled=False))
    with serve_in_thread(config) as served:
        emulated = Target(served.url, CONFORMANCE_TOKEN, other_token=OTHER_TOKEN,
                          producer=company("producer"), destination=company("destination"),
                          transporter=company("transporter"), emulator=served.emulator)
        yield emulated
        emulated.http.close()
