# Read by cpack (CPACK_PROJECT_CONFIG_FILE) before it builds a package.
#
# The .deb installs under /usr and its units run /usr/bin/buckwild: the build
# wrote the units for the prefix it was configured with, so a build for another
# prefix (cmake's default is /usr/local) would make a package whose units name
# a binary it does not contain. Refuse it, saying what to do.
if(CPACK_GENERATOR STREQUAL "DEB" AND NOT CPACK_PACKAGING_INSTALL_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR
    "buckwild: the .deb needs a build configured with -DCMAKE_INSTALL_PREFIX=/usr; "
    "this one is for ${CPACK_PACKAGING_INSTALL_PREFIX}. Run "
    "cmake -S . -B build -DCMAKE_INSTALL_PREFIX=/usr (and build again) first.")
endif()
