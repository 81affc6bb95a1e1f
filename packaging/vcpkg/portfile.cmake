# vcpkg overlay port for keel (header-only).
# From a release archive, replace the local source below with:
#   vcpkg_from_github(OUT_SOURCE_PATH SOURCE_PATH REPO <owner>/keel REF "v${VERSION}" SHA512 <sha512> HEAD_REF main)
set(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../..")

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    -DKEEL_BUILD_TESTS=OFF
    -DKEEL_BUILD_BENCHMARKS=OFF
    -DKEEL_BUILD_EXAMPLES=OFF
    -DKEEL_INSTALL=ON
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME keel CONFIG_PATH share/cmake/keel)
vcpkg_fixup_pkgconfig()

# Header-only: nothing architecture-specific, no debug tree.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug")
set(VCPKG_POLICY_EMPTY_PACKAGE enabled)

vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
