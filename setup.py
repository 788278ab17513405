"""Drives the CMake build and puts the op library into the package. CMakeLists.txt is the one
build description; this file only configures, builds and copies.

Environment:
  FLASHHIP_GPU          AUTO (default), CUDA, HIP or OFF
  FLASHHIP_BUILD_DIR    CMake build directory to use (default build/py-<backend>)
  FLASHHIP_CUDA_ARCHS / FLASHHIP_HIP_ARCHS   override the architecture lists
  MAX_JOBS              parallel compile jobs
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        backend = os.environ.get("FLASHHIP_GPU", "AUTO")
        build_dir = Path(os.environ.get("FLASHHIP_BUILD_DIR", ROOT / "build" / f"py-{backend.lower()}"))
        build_dir.mkdir(parents=True, exist_ok=True)
        configure = [
            "cmake", "-S", str(ROOT), "-B", str(build_dir), "-G", "Ninja",
            f"-DPython3_EXECUTABLE={sys.executable}", f"-DFLASHHIP_GPU={backend}",
        ]
        for var in ("FLASHHIP_CUDA_ARCHS", "FLASHHIP_HIP_ARCHS"):
            if os.environ.get(var):
                configure.append(f"-D{var}={os.environ[var]}")
        subprocess.check_call(configure)
        build = ["cmake", "--build", str(build_dir), "--target", "flashhip_ops"]
        if os.environ.get("MAX_JOBS"):
            build += ["-j", os.environ["MAX_JOBS"]]
        subprocess.check_call(build)
        target = Path(self.get_ext_fullpath(ext.name))  # <build_lib>/flashhip/libflashhip_ops.so
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(build_dir / "libflashhip_ops.so", target)
        # The build's facts (torch version, backend, archs), read by flashhip.info() and checked
        # against the importing torch before the library is loaded.
        shutil.copy2(build_dir / "flashhip_build_info.json", target.with_name("_build_info.json"))

    def get_ext_filename(self, ext_name: str) -> str:  # the library is not a Python module
        return os.path.join(*ext_name.split(".")) + ".so"


setup(
    packages=["flashhip", "flashhip.compat"],
    package_dir={"": "python"},
    ext_modules=[CMakeExtension("flashhip.libflashhip_ops")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
