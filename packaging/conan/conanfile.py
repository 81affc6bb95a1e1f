# Conan 2 recipe for keel, a header-only C++20 library.
#   conan create packaging/conan --version 0.1.0
import os

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import cmake_layout
from conan.tools.files import copy


class KeelConan(ConanFile):
    name = "keel"
    description = ("Header-only C++20 resilience policies for inference services: pipeline, "
                   "rate limiting, caching, queues, circuit breakers, load balancing, autoscaling.")
    license = "MIT"
    topics = ("resilience", "rate-limiting", "circuit-breaker", "cache", "load-balancing",
              "inference", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    no_copy_source = True

    def export_sources(self):
        # The recipe lives in packaging/conan; the sources are the repository root.
        root = os.path.join(self.recipe_folder, "..", "..")
        copy(self, "LICENSE", root, self.export_sources_folder)
        copy(self, "CMakeLists.txt", root, self.export_sources_folder)
        copy(self, "*", os.path.join(root, "include"), os.path.join(self.export_sources_folder, "include"))
        copy(self, "*", os.path.join(root, "cmake"), os.path.join(self.export_sources_folder, "cmake"))

    def layout(self):
        cmake_layout(self)

    def validate(self):
        check_min_cppstd(self, 20)

    def package_id(self):
        # Header-only: one package for every configuration.
        self.info.clear()

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"), os.path.join(self.package_folder, "include"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "keel")
        self.cpp_info.set_property("cmake_target_name", "keel::keel")
        self.cpp_info.set_property("pkg_config_name", "keel")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        if self.settings.os in ("Linux", "FreeBSD"):
            self.cpp_info.system_libs = ["pthread"]
