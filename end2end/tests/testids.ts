// Mirrors app/src/testid.rs: the data-testid values the UI carries.
export const T = {
  authForm: 'auth-form',
  authError: 'auth-error',
  roomList: 'room-list',
  newRoomName: 'new-room-name',
  newRoomPrivate: 'new-room-private',
  newRoomSubmit: 'new-room-submit',
  dmUsername: 'dm-username',
  dmSubmit: 'dm-submit',
  roomTitle: 'room-title',
  joinRoom: 'join-room',
  leaveRoom: 'leave-room',
  inviteUsername: 'invite-username',
  inviteSubmit: 'invite-submit',
  messages: 'messages',
  message: 'message',
  messageBody: 'message-body',
  loadOlder: 'load-older',
  composer: 'composer',
  send: 'send',
  connection: 'connection',
  signOut: 'sign-out',
  signOutEverywhere: 'sign-out-everywhere',
  typing: 'typing',
  notice: 'notice',
  skipLink: 'skip-link',
  closeSettings: 'close-settings',
  sendStatus: 'send-status',
  sendRetry: 'send-retry',
  sendDiscard: 'send-discard',
  composerOffline: 'composer-offline',
} as const;

export const id = (name: string) => `[data-testid="${name}"]`;

export const transportPicker = (feed: string) => `[data-testid="transport-${feed}"]`;
export const readout = (feed: string) => `[data-testid="readout-${feed}"]`;
