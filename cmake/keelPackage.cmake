# keel as a CMake package (keelConfig.cmake + version file) and a pkg-config file.
# The package files are generated in the build tree in every configuration, so
# find_package(keel CONFIG) works against a build directory (build-tree export)
# as well as against an install; install rules exist only with KEEL_INSTALL.
include(CMakePackageConfigHelpers)

set(KEEL_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/keel"
    CACHE STRING "Where keelConfig.cmake is installed (header-only, so under share/)")

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/keelConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/keelConfig.cmake"
  INSTALL_DESTINATION "${KEEL_INSTALL_CMAKEDIR}")
# Header-only: the package fits any architecture, so no 32/64-bit check.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/keelConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion
  ARCH_INDEPENDENT)
export(TARGETS keel NAMESPACE keel:: FILE "${PROJECT_BINARY_DIR}/keelTargets.cmake")

if(KEEL_INSTALL)
  install(TARGETS keel EXPORT keelTargets)
  install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/keel" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
  install(EXPORT keelTargets NAMESPACE keel:: DESTINATION "${KEEL_INSTALL_CMAKEDIR}")
  install(FILES "${PROJECT_BINARY_DIR}/keelConfig.cmake" "${PROJECT_BINARY_DIR}/keelConfigVersion.cmake"
          DESTINATION "${KEEL_INSTALL_CMAKEDIR}")
  configure_file("${PROJECT_SOURCE_DIR}/cmake/keel.pc.in" "${PROJECT_BINARY_DIR}/keel.pc" @ONLY)
  install(FILES "${PROJECT_BINARY_DIR}/keel.pc" DESTINATION "${CMAKE_INSTALL_DATADIR}/pkgconfig")
endif()
