"""`dispatch check --dns`, against an authoritative DNS server on 127.0.0.1 that the test fills.

Each failure mode is a zone with one thing wrong, read through the CLI as the owner runs it.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dispatch_mail.cli import main
from dispatch_mail.quality.dns_lookup import organizational_domain, parse_server
from dispatch_mail.quality.dns_records import spf_problems
from tests.helpers.dns_server import Zones, dns_server, silent_server
from tests.helpers.project import PROJECT_YAML, create_project

DKIM_YAML = """\
dkim:
  domain: example.org
  selector: s2026
  key_file: keys/dkim.pem
"""
SPF = "v=spf1 ip4:192.0.2.0/24 include:_spf.relay.example.net ~all"
DMARC = "v=DMARC1; p=none; rua=mailto:dmarc@example.org"


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def dkim_record(key: rsa.RSAPrivateKey, extra: str = "") -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa;{extra} p={base64.b64encode(der).decode()}"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def zones(key: rsa.RSAPrivateKey) -> Zones:
    """A setup that passes: SPF, the DKIM key of keys/dkim.pem, DMARC p=none, all aligned."""
    zones = Zones()
    zones.add("example.org", SPF, "google-site-verification=abc")
    zones.add("s2026._domainkey.example.org", dkim_record(key))
    zones.add("_dmarc.example.org", DMARC)
    return zones


@pytest.fixture(autouse=True)
def in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where the owner runs it, so paths show as dispatch.yaml and keys/dkim.pem."""
    monkeypatch.chdir(tmp_path)


def make(tmp_path: Path, key: rsa.RSAPrivateKey, extra: str = DKIM_YAML) -> Path:
    """A project sending as news@example.org, its DKIM key in keys/dkim.pem; the issue folder."""
    create_project(tmp_path, config=PROJECT_YAML + extra)
    (tmp_path / "keys").mkdir(exist_ok=True)
    (tmp_path / "keys" / "dkim.pem").write_bytes(pem(key))
    return tmp_path / "issues" / "test"


def run(zones: Zones, issue: Path | None, *args: str, env: dict[str, str] | None = None):
    with dns_server(zones) as server:
        where = [str(issue)] if issue else []
        result = CliRunner().invoke(
            main, ["check", *where, "--dns", "--dns-server", server.address, *args], env=env
        )
    assert "Traceback" not in result.output, result.output
    return result


def dns_findings(result) -> list[dict[str, str]]:
    reports = json.loads(result.output)
    return [f for r in reports if r["issue"] == "dns" for f in r["findings"]]


def codes(result, level: str | None = None) -> set[str]:
    return {f["code"] for f in dns_findings(result) if level is None or f["level"] == level}


# ------------------------------------------------------------------ the passing setup
def test_a_correct_setup_passes(tmp_path, key, zones):
    # many TXT records at the apex, as real domains have: more than 512 bytes
    zones.add("example.org", *(f"site-verification-{i}={'x' * 100}" for i in range(5)))
    result = run(zones, make(tmp_path, key))
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert "dispatch.yaml: Gmail/Yahoo bulk-sender rules: pass (SPF at example.org;" in last
    assert "DKIM at s2026._domainkey.example.org" in last and "p=none" in last
    # the apex's answer does not fit 512 bytes of UDP: the client asked again over TCP
    asked = [(q.name, q.protocol) for q in zones.queries if q.name == "example.org"]
    assert asked == [("example.org", "udp"), ("example.org", "tcp")]


def test_json_report_carries_the_verdict_as_a_finding(tmp_path, key, zones):
    result = run(zones, make(tmp_path, key), "--format", "json")
    assert result.exit_code == 0
    verdict = [f for f in dns_findings(result) if f["code"] == "dns.bulk-rules"]
    assert verdict[0]["level"] == "note" and ": pass" in verdict[0]["message"]


def test_dns_alone_checks_the_project_of_the_current_folder(tmp_path, key, zones):
    make(tmp_path, key)
    result = run(zones, None)
    assert result.exit_code == 0, result.output
    assert "bulk-sender rules: pass" in result.output


def test_verp_return_path_and_key_from_the_environment(tmp_path, key, zones):
    issue = make(tmp_path, key, DKIM_YAML.replace("keys/dkim.pem", "keys/absent.pem"))
    (tmp_path / "dispatch.yaml").write_text(
        (tmp_path / "dispatch.yaml").read_text() + "return_path: bounces+{token}@example.org\n"
    )
    env = {"DISPATCH_DKIM_KEY_FILE": str(tmp_path / "keys" / "dkim.pem")}
    result = run(zones, issue, env=env)
    assert result.exit_code == 0, result.output
    assert "bulk-sender rules: pass" in result.output


def test_the_server_can_come_from_the_environment(tmp_path, key, zones):
    issue = make(tmp_path, key)
    with dns_server(zones) as server:
        result = CliRunner().invoke(
            main, ["check", str(issue), "--dns"], env={"DISPATCH_DNS_SERVER": server.address}
        )
    assert result.exit_code == 0, result.output
    assert zones.queries


# ------------------------------------------------------------------ SPF
@pytest.mark.parametrize(
    ("records", "code", "level"),
    [
        ([], "dns.spf-missing", "error"),
        ([SPF, "v=spf1 -all"], "dns.spf-multiple", "error"),
        (["v=spf1 ip4:192.0.2.300 ~all"], "dns.spf-syntax", "error"),
        (["v=spf1 include ~all"], "dns.spf-syntax", "error"),
        (["v=spf1 ip4:192.0.2.1 +all"], "dns.spf-allow-all", "warning"),
    ],
)
def test_spf_problems(tmp_path, key, zones, records, code, level):
    zones.txt["example.org"] = ["google-site-verification=abc", *records]
    result = run(zones, make(tmp_path, key), "--format", "json")
    assert code in codes(result, level)
    assert result.exit_code == (1 if level == "error" else 0)
    verdict = next(f for f in dns_findings(result) if f["code"] == "dns.bulk-rules")
    assert (verdict["level"] == "error") == (level == "error")


def test_spf_counts_lookups():
    record = "v=spf1 " + " ".join(f"include:s{i}.example.net" for i in range(11)) + " -all"
    assert any("receivers stop at 10" in p for p in spf_problems(record))
    assert spf_problems("v=spf1 a mx/24 a:mail.example.org//64 ip6:2001:db8::/32 exp=x -all") == []


# ------------------------------------------------------------------ DKIM
def test_a_missing_key_record(tmp_path, key, zones):
    del zones.txt["s2026._domainkey.example.org"]
    result = run(zones, make(tmp_path, key))
    assert result.exit_code == 1
    assert "error: dns.dkim-missing: no DKIM key at s2026._domainkey.example.org" in result.output
    assert "bulk-sender rules: fail" in result.output


def test_a_key_that_is_not_ours(tmp_path, key, other_key, zones):
    zones.txt["s2026._domainkey.example.org"] = [dkim_record(other_key)]
    result = run(zones, make(tmp_path, key))
    assert result.exit_code == 1
    assert "dns.dkim-key-mismatch" in result.output
    assert "is not the public half of dkim's private key (keys/dkim.pem)" in result.output


def test_a_revoked_key(tmp_path, key, zones):
    zones.txt["s2026._domainkey.example.org"] = ["v=DKIM1; k=rsa; p="]
    result = run(zones, make(tmp_path, key), "--format", "json")
    assert result.exit_code == 1
    assert "dns.dkim-revoked" in codes(result, "error")


@pytest.mark.parametrize(
    ("record", "code", "level"),
    [
        ("v=DKIM1; k=ed25519; p=MCowBQYDK2VwAyEA", "dns.dkim-key-type", "error"),
        ("v=DKIM1; k=rsa; p=not*base64", "dns.dkim-syntax", "error"),
        ("v=DKIM2; p=MCowBQ==", "dns.dkim-syntax", "error"),
    ],
)
def test_unusable_key_records(tmp_path, key, zones, record, code, level):
    zones.txt["s2026._domainkey.example.org"] = [record]
    result = run(zones, make(tmp_path, key), "--format", "json")
    assert code in codes(result, level)
    assert result.exit_code == 1


def test_testing_mode_and_a_short_key_warn(tmp_path, zones):
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    zones.txt["s2026._domainkey.example.org"] = [dkim_record(short, " t=y;")]
    result = run(zones, make(tmp_path, short), "--format", "json")
    assert {"dns.dkim-key-size", "dns.dkim-testing"} <= codes(result, "warning")
    assert "dns.bulk-rules" in codes(result, "error")  # t=y: receivers treat it as unsigned


def test_an_unreadable_private_key_is_a_finding(tmp_path, key, zones):
    issue = make(tmp_path, key)
    (tmp_path / "keys" / "dkim.pem").write_text("not a key\n")
    result = run(zones, issue)
    assert result.exit_code == 1
    assert "dns.dkim-key-file: keys/dkim.pem: not a PEM private key" in result.output


def test_every_rotation_key_is_looked_up(tmp_path, key, other_key, zones):
    rotation = DKIM_YAML + "  rotation:\n    - selector: s2027\n      key_file: keys/next.pem\n"
    issue = make(tmp_path, key, rotation)
    (tmp_path / "keys" / "next.pem").write_bytes(pem(other_key))
    result = run(zones, issue, "--format", "json")
    missing = [f for f in dns_findings(result) if f["code"] == "dns.dkim-missing"]
    assert [f["where"] for f in missing] == ["TXT s2027._domainkey.example.org (dkim.rotation[0])"]
    zones.add("s2027._domainkey.example.org", dkim_record(other_key))
    assert run(zones, issue).exit_code == 0


def test_without_dkim_settings_the_verdict_is_not_confirmed(tmp_path, key, zones):
    issue = make(tmp_path, key, extra="")
    result = run(zones, issue)
    assert result.exit_code == 0
    assert "warning: dns.dkim-not-configured" in result.output
    assert "bulk-sender rules: not confirmed: DKIM is left to the relay" in result.output
    assert run(zones, issue, "--strict").exit_code == 1


# ------------------------------------------------------------------ DMARC
def test_a_missing_dmarc_record(tmp_path, key, zones):
    del zones.txt["_dmarc.example.org"]
    result = run(zones, make(tmp_path, key))
    assert result.exit_code == 1
    assert "error: dns.dmarc-missing: no DMARC record at _dmarc.example.org" in result.output


def test_a_dmarc_record_without_a_policy(tmp_path, key, zones):
    zones.txt["_dmarc.example.org"] = ["v=DMARC1; p=monitor"]
    result = run(zones, make(tmp_path, key))
    assert result.exit_code == 1
    assert "dns.dmarc-policy: the DMARC record p=monitor: the policy must be" in result.output


def test_dmarc_falls_back_to_the_organizational_domain(tmp_path, key, zones):
    """From news@mail.example.org: no _dmarc.mail.example.org, so _dmarc.example.org's sp=."""
    zones.txt["_dmarc.example.org"] = ["v=DMARC1; p=reject; sp=quarantine"]
    zones.add("mail.example.org", SPF)
    config = PROJECT_YAML.replace("news@example.org", "news@mail.example.org") + DKIM_YAML
    create_project(tmp_path, config=config)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "dkim.pem").write_bytes(pem(key))
    result = run(zones, tmp_path / "issues" / "test")
    assert result.exit_code == 0, result.output
    assert "p=quarantine at _dmarc.example.org" in result.output
    asked = [q.name for q in zones.queries if q.name.startswith("_dmarc")]
    assert asked == ["_dmarc.mail.example.org", "_dmarc.example.org"]


# ------------------------------------------------------------------ alignment
def test_an_esp_envelope_is_fine_while_dkim_is_aligned(tmp_path, key, zones):
    issue = make(tmp_path, key, DKIM_YAML + "return_path: bounces@esp-mail.net\n")
    zones.add("esp-mail.net", "v=spf1 include:_spf.esp-mail.net ~all")
    result = run(zones, issue, "--format", "json")
    assert result.exit_code == 0
    notes = [f for f in dns_findings(result) if f["code"] == "dns.not-aligned"]
    assert notes[0]["level"] == "note" and "esp-mail.net (return_path)" in notes[0]["message"]


def test_nothing_aligned_fails_dmarc(tmp_path, key, zones):
    extra = DKIM_YAML.replace("domain: example.org", "domain: esp-mail.net")
    extra += "smtp:\n  default:\n    host: relay.example.net\n    return_path: b@esp-mail.net\n"
    issue = make(tmp_path, key, extra)
    zones.add("esp-mail.net", "v=spf1 include:_spf.esp-mail.net ~all")
    zones.add("s2026._domainkey.esp-mail.net", dkim_record(key))
    result = run(zones, issue)
    assert result.exit_code == 1
    assert "error: dns.not-aligned: DMARC fails for mail sent with MAIL FROM @esp-mail.net" in (
        result.output
    )
    assert "the envelope domain esp-mail.net (smtp.default.return_path) is not aligned" in (
        result.output
    )


def test_strict_alignment_wants_the_same_domain(tmp_path, key, zones):
    issue = make(tmp_path, key, DKIM_YAML + "return_path: bounces@mail.example.org\n")
    zones.add("mail.example.org", SPF)
    zones.txt["_dmarc.example.org"] = ["v=DMARC1; p=none; aspf=s"]
    result = run(zones, issue, "--format", "json")
    note = next(f for f in dns_findings(result) if f["code"] == "dns.not-aligned")
    assert "strict: the same domain" in note["message"] and note["level"] == "note"
    assert result.exit_code == 0  # DKIM d=example.org is still aligned


def test_organizational_domains():
    assert organizational_domain("news.example.co.uk") == "example.co.uk"
    assert organizational_domain("Mail.Example.ORG.") == "example.org"
    assert organizational_domain("co.uk") == "co.uk"


# ------------------------------------------------------------------ lookups that fail
def test_servfail_is_a_lookup_failure_not_a_missing_record(tmp_path, key, zones):
    zones.servfail.add("_dmarc.example.org")
    result = run(zones, make(tmp_path, key))
    assert result.exit_code == 1
    assert "error: dns.lookup-failed: 127.0.0.1:" in result.output
    assert "answered SERVFAIL [TXT _dmarc.example.org]" in result.output
    assert "dns.dmarc-missing" not in result.output


def test_a_server_that_never_answers(tmp_path, key):
    issue = make(tmp_path, key)
    with silent_server() as address:
        result = CliRunner().invoke(
            main, ["check", str(issue), "--dns", "--dns-server", address, "--dns-timeout", "0.4"]
        )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    failures = [line for line in result.output.splitlines() if "dns.lookup-failed" in line]
    assert failures == [
        f"  error: dns.lookup-failed: no answer from {address} within 0.4 s"
        " (the remaining lookups were skipped) [TXT example.org]"
    ]
    assert "bulk-sender rules: not confirmed" in result.output


@pytest.mark.parametrize("value", ["127.0.0.1:port", "127.0.0.1:70000", "[::1"])
def test_a_bad_server_is_a_usage_error(tmp_path, key, value):
    result = CliRunner().invoke(
        main, ["check", str(make(tmp_path, key)), "--dns-server", value, "--dns"]
    )
    assert result.exit_code == 2
    assert f"error: the DNS server {value!r}" in result.output and "Traceback" not in result.output


def test_server_addresses():
    assert parse_server("127.0.0.1") == ("127.0.0.1", 53)
    assert parse_server("[::1]:5353") == ("::1", 5353)
    assert parse_server("::1") == ("::1", 53)


def test_plain_check_never_imports_dnspython(tmp_path, key):
    issue = make(tmp_path, key)
    code = (
        "import sys; from click.testing import CliRunner; from dispatch_mail.cli import main; "
        f"r = CliRunner().invoke(main, ['check', {str(issue)!r}]); "
        "print(r.exit_code, [m for m in ('dns', 'publicsuffixlist') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split(None, 1)[1].strip() == "[]", out.stdout + out.stderr
