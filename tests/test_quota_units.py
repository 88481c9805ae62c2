"""services/quotas.py on a real (SQLite) database, no node: what counts as usage, the default
quota, and refusals that name the limit, the usage and the Spaces behind it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from spaceport.db.models import Base, Build, Deployment, Space, User, utcnow
from spaceport.services import quotas
from spaceport.services.quotas import QuotaExceeded
from spaceport.settings import DEFAULT_DATA_SIZES, QuotaConfig, Settings


@pytest.fixture(params=["sqlite", "postgres"])
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Session:
    """SQLite (the embedded default) and PostgreSQL migrated from scratch (production)."""
    if request.param == "postgres":
        from spaceport.db.migrate import upgrade

        url = request.getfixturevalue("pg_url")
        upgrade(url)
        engine = create_engine(url)
    else:
        engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
        Base.metadata.create_all(engine)
    request.addfinalizer(engine.dispose)
    session = Session(engine)
    request.addfinalizer(session.close)  # first: finalizers run last-in, first-out
    return session


def space(
    session: Session,
    name: str,
    *,
    desired: str = "running",
    stage: str = "RUNNING",
    hardware: str = "cpu-basic",
    live: bool = False,
) -> Space:
    s = Space(owner="lab", name=name, desired=desired, stage=stage, hardware_requested=hardware)
    session.add(s)
    session.flush()
    if live:
        session.add(Deployment(space_id=s.id, image="x", status="active"))
        session.flush()
    return s


def test_what_counts_as_awake(session: Session, tmp_path: Path) -> None:
    settings = Settings(data=tmp_path)
    space(session, "serving", live=True)
    space(session, "building", stage="BUILDING")
    space(session, "frozen", stage="SLEEPING", live=True)  # light sleep: keeps its container
    space(session, "deep", desired="sleeping", stage="SLEEPING")
    space(session, "paused", desired="paused", stage="PAUSED", hardware="cpu-upgrade")
    space(session, "empty", stage="NO_APP_FILE")
    space(session, "broken", stage="BUILD_ERROR")
    used = quotas.usage(session, settings, "lab")
    assert sorted(used.awake) == ["lab/building", "lab/frozen", "lab/serving"]
    assert used.total("cpu") == 6 and used.total("memory_gb") == 48
    assert used.total("spaces") == 7


def test_refusals_name_the_limit_the_usage_and_the_spaces(session: Session, tmp_path: Path) -> None:
    settings = Settings(data=tmp_path)
    space(session, "a", live=True)
    paused = space(session, "b", desired="paused", stage="PAUSED", hardware="cpu-upgrade")
    quotas.set_limits(session, settings, "lab", {"cpu": 8})
    with pytest.raises(QuotaExceeded) as err:
        quotas.check_awake(session, settings, paused)
    assert str(err.value) == (
        "Quota exceeded for lab: at most 8 CPUs in awake Spaces; lab/b on cpu-upgrade needs 8 "
        "and the others use 2 (lab/a: 2). Pause or delete another Space, choose smaller "
        "hardware, or ask an admin to raise the limit (spaceport quota set lab --cpu N)."
    )
    assert err.value.status_code == 403
    # Lowered below what runs: what already holds its share is never refused.
    quotas.set_limits(session, settings, "lab", {"cpu": 1})
    running = session.query(Space).filter_by(name="a").one()
    quotas.check_awake(session, settings, running)
    with pytest.raises(QuotaExceeded, match="lab/a on cpu-upgrade needs 8"):  # but not more
        quotas.check_awake(session, settings, running, "cpu-upgrade")


def test_builds_of_the_last_hour(session: Session, tmp_path: Path) -> None:
    settings = Settings(data=tmp_path)
    s = space(session, "a", live=True)
    session.add(Build(space_id=s.id, commit_sha="1" * 40, created_at=utcnow()))
    session.add(Build(space_id=s.id, commit_sha="2" * 40, created_at=utcnow() - timedelta(hours=2)))
    session.flush()
    quotas.set_limits(session, settings, "lab", {"builds_per_hour": 2})
    quotas.check_build(session, settings, s)  # one in the last hour: room for one more
    quotas.set_limits(session, settings, "lab", {"builds_per_hour": 1})
    with pytest.raises(
        QuotaExceeded,
        match=r"at most 1 builds per hour, it started 1 in the last "
        r"hour \(lab/a: 1\)",
    ):
        quotas.check_build(session, settings, s)


def test_the_default_quota_and_a_namespace_of_its_own(session: Session, tmp_path: Path) -> None:
    settings = Settings(data=tmp_path, default_quota=QuotaConfig(spaces=2, cpu=4))
    space(session, "a")
    space(session, "b")
    assert quotas.report(session, settings, "lab")["default"] is True
    with pytest.raises(QuotaExceeded, match="at most 2 Spaces, it has 2 \\(lab/a, lab/b\\)"):
        quotas.check_new_space(session, settings, "lab")
    quotas.check_new_space(session, settings, "elsewhere")
    session.add(User(name="root", is_admin=True))
    assert set(quotas.limits_of(session, settings, "root").values()) == {None}  # admins: spared
    quotas.set_limits(session, settings, "lab", {"spaces": 3})  # starts from the default
    assert quotas.limits_of(session, settings, "lab") == {
        "spaces": 3,
        "cpu": 4,
        "memory_gb": None,
        "gpus": None,
        "storage_gb": None,
        "builds_per_hour": None,
    }
    quotas.set_limits(session, settings, "lab", {"cpu": None})  # null: unlimited, not default
    assert quotas.limits_of(session, settings, "lab")["cpu"] is None
    quotas.check_new_space(session, settings, "lab")


def test_storage_tiers_and_repositories(session: Session, tmp_path: Path) -> None:
    # Hugging Face's tiers of 20, 150 and 1000 GB, whatever the environment says (the test
    # node sets small ones in it for the whole session)
    settings = Settings(data=tmp_path, data_sizes=dict(DEFAULT_DATA_SIZES))
    a = space(session, "a")
    a.storage = "small"
    b = space(session, "b")
    repo = settings.repos_dir / "lab" / "b.git"
    repo.mkdir(parents=True)
    (repo / "pack").write_bytes(b"x" * 5_000_000)
    quotas.set_limits(session, settings, "lab", {"storage_gb": 30})
    assert quotas.usage(session, settings, "lab").storage_gb == {"lab/a": 20, "lab/b": 0.005}
    with pytest.raises(QuotaExceeded) as err:
        quotas.check_storage(session, settings, b, "small")
    assert str(err.value) == (
        "Quota exceeded for lab: at most 30 GB of storage (/data and repositories), it uses "
        "20 (lab/a: 20 GB, lab/b: 0.01 GB) and small storage for lab/b adds 20 GB. Delete another "
        "Space's storage or ask an admin to raise the limit (spaceport quota set lab "
        "--storage-gb N)."
    )
    quotas.check_storage(session, settings, a, "small")  # what it has: nothing added
    quotas.set_limits(session, settings, "lab", {"storage_gb": 200})
    quotas.check_storage(session, settings, a, "medium")
