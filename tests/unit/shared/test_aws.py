"""shared/aws.py: one data loader per process, endpoints.json pruned to the project's services, the
files parsed as botocore parses them but into plain dicts."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
from botocore.loaders import Loader

import shared.aws
from shared.aws import AWS_SERVICES, DATA_LOADER, ProjectDataFileLoader, aws_clients
from shared.settings import ServiceSettings

SETTINGS = ServiceSettings(aws_endpoint_url="http://127.0.0.1:1")  # nothing is called: clients only


class TestProjectDataFileLoader:
    def test_endpoints_keep_the_projects_services_in_every_partition(self) -> None:
        full = Loader().load_data("endpoints")
        # A loader of its own: the process's DATA_LOADER holds what botocore's endpoint resolver
        # has filled in since (tests that made clients earlier in this process).
        pruned = Loader(file_loader=ProjectDataFileLoader()).load_data("endpoints")
        assert [p["partition"] for p in pruned["partitions"]] == [p["partition"] for p in full["partitions"]]
        for kept, original in zip(pruned["partitions"], full["partitions"], strict=True):
            expected = {name: service for name, service in original["services"].items() if name in AWS_SERVICES.values()}
            assert kept["services"] == expected
            assert {key: value for key, value in kept.items() if key != "services"} == {
                key: value for key, value in original.items() if key != "services"
            }
        assert set(pruned["partitions"][0]["services"]) == set(AWS_SERVICES.values())  # the aws partition has them all

    @pytest.mark.parametrize("service", sorted(AWS_SERVICES))
    def test_each_service_is_listed_under_its_endpoint_prefix(self, service: str) -> None:
        model = DATA_LOADER.load_service_model(service, "service-2")
        assert model["metadata"]["endpointPrefix"] == AWS_SERVICES[service]

    def test_a_service_model_is_botocores_in_plain_dicts(self) -> None:
        ours = DATA_LOADER.load_service_model("sqs", "service-2")
        theirs = Loader().load_service_model("sqs", "service-2")
        assert type(theirs) is OrderedDict and type(ours) is dict
        assert ours == theirs

    def test_a_missing_file_is_none(self, tmp_path: Path) -> None:
        assert ProjectDataFileLoader().load_file(f"{tmp_path}/nothing-here") is None


class TestAwsClients:
    async def test_a_service_outside_the_list_is_refused(self) -> None:
        with pytest.raises(ValueError, match="add it to shared.aws.AWS_SERVICES"):
            async with aws_clients(SETTINGS, "sqs", "kinesis"):
                pass

    async def test_clients_of_separate_calls_share_one_parse_of_each_file(self, monkeypatch: pytest.MonkeyPatch) -> None:
        parsed: list[str] = []
        parse = shared.aws._parse

        def counting_parse(path: str) -> object:
            parsed.append(path.rsplit("/data/", 1)[-1])
            return parse(path)

        monkeypatch.setattr(shared.aws, "_parse", counting_parse)
        monkeypatch.setattr(shared.aws, "DATA_LOADER", Loader(file_loader=ProjectDataFileLoader()))
        async with aws_clients(SETTINGS, "sqs") as first, aws_clients(SETTINGS, "sqs", "sns") as (second, sns):
            assert first.meta.service_model.operation_names == second.meta.service_model.operation_names
            assert "Publish" in sns.meta.service_model.operation_names
        assert len(parsed) == len(set(parsed)), parsed  # each file once, for three clients of two sessions
        assert "endpoints.json" in parsed
        assert {path.split("/")[0] for path in parsed if "/" in path} == {"sqs", "sns"}
