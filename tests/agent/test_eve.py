"""EVE fields: Community ID v1 against the spec's published vectors, timestamps, flow ids."""

from __future__ import annotations

import pytest

from edge_nids.agent.eve import community_id, eve_timestamp, flow_id_int

# Vectors from the Community ID spec's reference baseline (corelight/community-id-spec), as
# also used by Zeek's and Suricata's test suites.
V6A = "fe80:0001:0203:0405:0607:0809:0A0B:0C0D"
V6B = "fe80:1011:1213:1415:1617:1819:1A1B:1C1D"


@pytest.mark.parametrize(
    ("src", "dst", "proto", "sport", "dport", "seed", "expected"),
    [
        ("1.2.3.4", "5.6.7.8", 6, 1122, 3344, 0, "1:wCb3OG7yAFWelaUydu0D+125CLM="),
        ("5.6.7.8", "1.2.3.4", 6, 3344, 1122, 0, "1:wCb3OG7yAFWelaUydu0D+125CLM="),
        ("1.2.3.4", "5.6.7.8", 17, 1122, 3344, 0, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="),
        ("5.6.7.8", "1.2.3.4", 17, 3344, 1122, 0, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="),
        ("1.2.3.4", "5.6.7.8", 1, 8, 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="),
        ("5.6.7.8", "1.2.3.4", 1, 0, 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="),
        (V6A, V6B, 58, 128, 0, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo="),
        ("1.2.3.4", "5.6.7.8", 46, None, None, 0, "1:ikv3kmf89luf73WPz1jOs49S768="),
        ("1.2.3.4", "5.6.7.8", 6, 1122, 3344, 1, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="),
        ("1.2.3.4", "5.6.7.8", 17, 1122, 3344, 1, "1:OShq+iKDAMVouh/4bMxB9Sz4amw="),
        ("1.2.3.4", "5.6.7.8", 1, 8, 0, 1, "1:9pr4ZGTICiuZoIh90RRYE2RyXpU="),
    ],
)
def test_community_id_spec_vectors(src, dst, proto, sport, dport, seed, expected) -> None:
    assert community_id(src, dst, proto, sport, dport, seed) == expected


def test_community_id_one_way_icmp_keeps_direction() -> None:
    # destination unreachable (type 3) has no reply type: the tuple is not reordered
    a = community_id("1.2.3.4", "5.6.7.8", 1, 3, 1)
    b = community_id("5.6.7.8", "1.2.3.4", 1, 3, 1)
    assert a != b


def test_eve_timestamp_has_microseconds_and_offset() -> None:
    assert eve_timestamp(1499348412123456) == "2017-07-06T13:40:12.123456+0000"
    assert eve_timestamp(0) == "1970-01-01T00:00:00.000000+0000"


def test_flow_id_is_positive_int64_and_depends_on_start() -> None:
    a = flow_id_int("10.0.0.1", "10.0.0.2", 1000, 80, 6, 1)
    b = flow_id_int("10.0.0.1", "10.0.0.2", 1000, 80, 6, 2)
    assert 0 < a < 2**63 and 0 < b < 2**63 and a != b
    assert a == flow_id_int("10.0.0.1", "10.0.0.2", 1000, 80, 6, 1)
