# weft_add_module(<name> [SHARED_LINK args...] [STATIC_LINK args...])
#
# From the object library weft_<name>_obj, which the module defines with
# its own sources and options, make the two libraries every module ships:
# the shared weft_<name> (weft::<name>, what users link) and the static
# weft_<name>_static (weft::<name>_static, installed too; the tests and
# benchmarks link it to reach internals). Both get the module's public
# headers (<module>/include) and are installed with them. SHARED_LINK and
# STATIC_LINK are passed to target_link_libraries as they are.
function(weft_add_module name)
  cmake_parse_arguments(M "" "" "SHARED_LINK;STATIC_LINK" ${ARGN})
  set(shared weft_${name})
  set(static weft_${name}_static)
  add_library(${shared} SHARED $<TARGET_OBJECTS:weft_${name}_obj>)
  add_library(${static} STATIC $<TARGET_OBJECTS:weft_${name}_obj>)
  set_target_properties(${shared} PROPERTIES OUTPUT_NAME weft_${name}
    VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
    EXPORT_NAME ${name})
  set_target_properties(${static} PROPERTIES OUTPUT_NAME weft_${name}
    EXPORT_NAME ${name}_static)
  foreach(t ${shared} ${static})
    target_include_directories(${t} PUBLIC
      $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  endforeach()
  if(M_SHARED_LINK)
    target_link_libraries(${shared} ${M_SHARED_LINK})
  endif()
  if(M_STATIC_LINK)
    target_link_libraries(${static} ${M_STATIC_LINK})
  endif()
  add_library(weft::${name} ALIAS ${shared})
  add_library(weft::${name}_static ALIAS ${static})
  install(TARGETS ${shared} ${static} EXPORT weftTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY include/weft DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()
