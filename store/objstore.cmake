# Object storage (local directory, S3-compatible), compression, checksums.
# Included by store/CMakeLists.txt into the ckptd_store library.
target_sources(ckptd_store PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/object_store.cpp
  ${CMAKE_CURRENT_LIST_DIR}/local_fs.cpp
  ${CMAKE_CURRENT_LIST_DIR}/local_object_store.cpp
  ${CMAKE_CURRENT_LIST_DIR}/local_writer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/digest.cpp
  ${CMAKE_CURRENT_LIST_DIR}/codec.cpp
  ${CMAKE_CURRENT_LIST_DIR}/s3_config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/s3_signer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/s3_xml.cpp
  ${CMAKE_CURRENT_LIST_DIR}/s3_client.cpp
  ${CMAKE_CURRENT_LIST_DIR}/s3_object_store.cpp
  ${CMAKE_CURRENT_LIST_DIR}/object_uri.cpp
)
target_link_libraries(ckptd_store PUBLIC
  OpenSSL::SSL OpenSSL::Crypto ckptd_blake3 PkgConfig::ZSTD PkgConfig::LZ4 Boost::url fmt::fmt Threads::Threads)
