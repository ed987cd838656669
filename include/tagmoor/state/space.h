/*
 * space.h — whether state_dir can record a pass, asked before the pass
 * applies anything (space.c).
 */
#ifndef TAGMOOR_STATE_SPACE_H
#define TAGMOOR_STATE_SPACE_H

/* Room in state_dir's file system for the files a pass writes after it
 * applied (state.json and floor replaced atomically, report.last, a spooled
 * report): twice the current state.json plus TM_STATE_ROOM_MARGIN bytes.
 * 0 when there is (or state_dir cannot be examined: the writes report their
 * own errors); TM_EIO naming state_dir ("No space left on device: N bytes
 * free, M needed", or "Read-only file system") when not. */
int tm_state_check_space(const char *state_dir);

#define TM_STATE_ROOM_MARGIN (256u * 1024u)

#endif
