"""Declarative mappings: business columns → Trackdéchets input objects, checked before sending."""

from connector.mapping.checks import check_payload
from connector.mapping.compiler import CompiledMapping, compile_mapping
from connector.mapping.hashing import canonical_json, payload_hash
from connector.mapping.loading import load_mapping, load_mappings, parse_mapping
from connector.mapping.spec import MappingSpec, mapping_json_schema

__all__ = [
    "CompiledMapping",
    "MappingSpec",
    "canonical_json",
    "check_payload",
    "compile_mapping",
    "load_mapping",
    "load_mappings",
    "mapping_json_schema",
    "parse_mapping",
    "payload_hash",
]
