"""The worker's log says what a start-up message means: a group still forming is expected, not an error."""

from __future__ import annotations

import logging

import pytest
from aiokafka.errors import GroupCoordinatorNotAvailableError, KafkaConnectionError

from pipelines.streaming.worker import COORDINATOR_LOGGER, expect_coordinator_search


def test_a_coordinator_not_yet_available_is_logged_below_error(caplog: pytest.LogCaptureFixture) -> None:
    expect_coordinator_search()
    expect_coordinator_search()  # installed once, however often the worker starts
    logger = logging.getLogger(COORDINATOR_LOGGER)
    assert len(logger.filters) == 1
    caplog.set_level(logging.INFO, logger=COORDINATOR_LOGGER)
    # what aiokafka's coordinator lookup logs while the broker has no coordinator for the group yet
    logger.error("Group Coordinator Request failed: %s", GroupCoordinatorNotAvailableError())
    logger.error("Group Coordinator Request failed: %s", KafkaConnectionError("no broker"))
    expected, other = caplog.records
    assert expected.levelno == logging.INFO and expected.levelname == "INFO"
    assert "expected while the group forms" in expected.getMessage()
    assert "GroupCoordinatorNotAvailableError" in expected.getMessage()
    assert other.levelno == logging.ERROR, "any other failure stays an error"


def test_at_the_default_level_the_expected_retries_are_not_shown(caplog: pytest.LogCaptureFixture) -> None:
    expect_coordinator_search()
    caplog.set_level(logging.WARNING, logger=COORDINATOR_LOGGER)
    logging.getLogger(COORDINATOR_LOGGER).error("Group Coordinator Request failed: %s", GroupCoordinatorNotAvailableError())
    assert caplog.records == []
