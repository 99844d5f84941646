# backend-api: the write side (civetweb HTTP + libpq + the transactional outbox to
# Kafka). The migrations are embedded at build time: $(BUILD)/gen/migrations.c is
# generated from migrations/*.sql in name order, so no runtime path is needed.
BA_SRCS := backend-api/src/config.c backend-api/src/db.c backend-api/src/migrate.c \
           backend-api/src/task_store.c backend-api/src/outbox.c backend-api/src/wal.c backend-api/src/server.c \
           backend-api/src/tasks.c backend-api/src/reqparse.c \
           backend-api/src/lists.c backend-api/src/list_store.c
BA_LIB := $(BUILD)/lib/libbackend-api.a
BA_MIGRATIONS := $(sort $(wildcard migrations/*.sql))
BA_GEN := $(BUILD)/gen/migrations.c

$(BA_GEN): $(BA_MIGRATIONS) backend-api/gen-migrations.sh
	@mkdir -p $(@D)
	backend-api/gen-migrations.sh $(BA_MIGRATIONS) >$@.tmp && mv $@.tmp $@

$(OBJ)/gen/migrations.o: $(BA_GEN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(BA_LIB): $(call objs,$(BA_SRCS)) $(OBJ)/gen/migrations.o
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BIN)/backend-api: $(call objs,backend-api/src/main.c) $(BA_LIB) $(COMMON_LIB)
	$(call link)
BINS += $(BIN)/backend-api
