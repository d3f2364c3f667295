# Mayday's C ABI for a CMake project:
#
#   set(MAYDAY_ROOT /path/to/prefix)   # holds include/mayday.h and lib/libmayday.a
#   include(/path/to/mayday.cmake)
#   target_link_libraries(app PRIVATE Mayday::mayday)
#
# Call mayday_install() first thing in main(): the monitor is the application
# itself, started again.
if(NOT MAYDAY_ROOT)
  message(FATAL_ERROR "mayday.cmake: set MAYDAY_ROOT to the prefix holding include/mayday.h and lib/libmayday.a")
endif()
find_path(MAYDAY_INCLUDE_DIR mayday.h PATHS "${MAYDAY_ROOT}/include" NO_DEFAULT_PATH REQUIRED)
find_library(MAYDAY_LIBRARY NAMES libmayday.a mayday PATHS "${MAYDAY_ROOT}/lib" NO_DEFAULT_PATH REQUIRED)
find_package(Threads REQUIRED)
add_library(Mayday::mayday UNKNOWN IMPORTED)
set_target_properties(Mayday::mayday PROPERTIES
  IMPORTED_LOCATION "${MAYDAY_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${MAYDAY_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m;rt;util")
