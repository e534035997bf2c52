"""is_database_unavailable: "the database cannot be reached" recognised whoever raised or wrapped it."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError

from shared.database import is_database_unavailable


class LibraryError(Exception):
    """What some library raises around the error it got."""


def wrapped_by_cause(error: BaseException) -> BaseException:
    try:
        raise LibraryError("request failed") from error
    except LibraryError as exc:
        return exc


def wrapped_by_context(error: BaseException) -> BaseException:
    try:
        try:
            raise error
        except BaseException:
            raise LibraryError("while handling it")  # noqa: B904 - the implicit __context__ is the point
    except LibraryError as exc:
        return exc


class TestIsDatabaseUnavailable:
    @pytest.mark.parametrize(
        "error",
        [
            ConnectionRefusedError(111, "Connection refused"),
            TimeoutError(),
            asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
            asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
            asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
            asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation is in progress"),
        ],
    )
    def test_outages_directly_and_wrapped(self, error: BaseException) -> None:
        assert is_database_unavailable(error)
        assert is_database_unavailable(wrapped_by_cause(error))
        assert is_database_unavailable(wrapped_by_context(error))
        assert is_database_unavailable(wrapped_by_cause(wrapped_by_context(error)))

    @pytest.mark.parametrize("error", [asyncpg.exceptions.UndefinedTableError('relation "x" does not exist'), ValueError("bad"), KeyError("k")])
    def test_other_errors_are_not_outages(self, error: BaseException) -> None:
        assert not is_database_unavailable(error)
        assert not is_database_unavailable(wrapped_by_cause(error))

    def test_sqlalchemy_wrappers_by_their_orig(self) -> None:
        assert is_database_unavailable(OperationalError("SELECT 1", {}, ConnectionResetError(104, "reset")))
        assert not is_database_unavailable(ProgrammingError("SELECT x", {}, asyncpg.exceptions.UndefinedColumnError("no x")))
        invalidated = ProgrammingError("SELECT 1", {}, Exception("?"), connection_invalidated=True)
        assert is_database_unavailable(invalidated)

    def test_a_cycle_of_wrappers_ends(self) -> None:
        first, second = LibraryError("a"), LibraryError("b")
        first.__cause__, second.__context__ = second, first
        assert not is_database_unavailable(first)
