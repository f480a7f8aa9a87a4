import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "POS_CREDENTIALS_KEYS", "PII_ENCRYPTION_KEYS", "PII_BLIND_INDEX_KEYS"}
    }
    clean.update(env)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; "
            "django.setup(); from django.conf import settings; print(settings.DEBUG)",
        ],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_refuse_to_start_without_secret_key_when_debug_is_off():
    result = load_settings(DEBUG="false", POS_CREDENTIALS_KEYS="k7fZ6d8wVd0q1eVbQ2o8oQ3m0F7mVJ0rS2s8R1aZ0b4=")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_settings_refuse_to_start_without_credentials_key_when_debug_is_off():
    result = load_settings(DEBUG="false", SECRET_KEY="x" * 50)
    assert result.returncode != 0
    assert "POS_CREDENTIALS_KEYS must be set" in result.stderr


def test_settings_refuse_to_start_without_pii_keys_when_debug_is_off():
    result = load_settings(
        DEBUG="false", SECRET_KEY="x" * 50, POS_CREDENTIALS_KEYS="k7fZ6d8wVd0q1eVbQ2o8oQ3m0F7mVJ0rS2s8R1aZ0b4="
    )
    assert result.returncode != 0
    assert "PII_ENCRYPTION_KEYS must be set" in result.stderr


def test_debug_runs_with_development_defaults():
    result = load_settings(DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "kq3Zp0v8Yt2mWc6Rf1Hs9Lx4Nb7Jd5Ge0Ua3Io8Pq2Tw6Ey1Rz4Vm9Xn7Bk5Cj",
    "POS_CREDENTIALS_KEYS": "k7fZ6d8wVd0q1eVbQ2o8oQ3m0F7mVJ0rS2s8R1aZ0b4=",
    "PII_ENCRYPTION_KEYS": "p1:" + "E" * 43 + "=",
    "PII_BLIND_INDEX_KEYS": "p1:" + "F" * 43 + "=",
    "ALLOWED_HOSTS": "customers.example.com",
}
HTTPS = {
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
}


def check_deploy(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {*PRODUCTION, *HTTPS}}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_once_https_is_set_from_the_environment():
    result = check_deploy(**PRODUCTION, **HTTPS)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr


def test_check_deploy_names_what_is_missing_without_https():
    result = check_deploy(**PRODUCTION)
    assert result.returncode != 0
    for warning in ("W004", "W008", "W010", "W016"):  # the four the issue saw
        assert f"security.{warning}" in result.stderr


def test_behind_a_tls_proxy_the_forwarded_scheme_counts_and_health_is_not_redirected():
    script = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; django.setup()\n"
        "from django.test import Client\n"
        "c = Client(HTTP_HOST='customers.example.com')\n"
        "print(c.get('/api/schema/').status_code, c.get('/api/schema/').get('Location'))\n"
        "r = c.get('/api/schema/', HTTP_X_FORWARDED_PROTO='https')\n"
        "print(r.status_code, r.get('Strict-Transport-Security'))\n"
        "print(c.get('/health/').status_code != 301)\n"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {*PRODUCTION, *HTTPS}}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**clean, **PRODUCTION, **HTTPS},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    plain, forwarded, health = result.stdout.splitlines()
    assert plain == "301 https://customers.example.com/api/schema/"
    assert forwarded == "200 max-age=31536000; includeSubDomains; preload"
    assert health == "True"


def test_a_malformed_proxy_header_setting_is_refused():
    result = load_settings(DEBUG="true", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    assert result.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER is HEADER,VALUE" in result.stderr
