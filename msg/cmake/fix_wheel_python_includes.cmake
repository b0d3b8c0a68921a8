# Injected with -DCMAKE_PROJECT_INCLUDE when building against ROS 2 from PyPI wheels.
#
# The wheels' exported <pkg>__rosidl_generator_py targets carry the include directories of the
# machine that built them (/opt/python/cp311-cp311/...). CMake refuses imported targets whose
# include directories do not exist, so after each find_package we point those targets at this
# interpreter's Python and numpy headers. Not needed (and not used) on a colcon/apt ROS install.
if(NOT HVP_PYTHON_INCLUDE OR NOT HVP_NUMPY_INCLUDE)
  message(FATAL_ERROR "fix_wheel_python_includes.cmake needs -DHVP_PYTHON_INCLUDE and -DHVP_NUMPY_INCLUDE")
endif()

function(hvp_fix_generator_py_targets)
  get_property(_targets DIRECTORY PROPERTY IMPORTED_TARGETS)
  foreach(_t IN LISTS _targets)
    if(_t MATCHES "__rosidl_generator_py$")
      get_target_property(_dirs ${_t} INTERFACE_INCLUDE_DIRECTORIES)
      if(_dirs AND _dirs MATCHES "/opt/python/")
        set_target_properties(${_t} PROPERTIES
          INTERFACE_INCLUDE_DIRECTORIES "${HVP_PYTHON_INCLUDE};${HVP_NUMPY_INCLUDE}")
      endif()
    endif()
  endforeach()
endfunction()

# Re-run the fix whenever a package config finishes loading.
macro(find_package)
  _find_package(${ARGV})
  hvp_fix_generator_py_targets()
endmacro()
