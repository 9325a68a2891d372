// Mirrors app/src/testid.rs: the data-testid values the UI carries.
export const T = {
  authForm: 'auth-form',
  authError: 'auth-error',
  authUsernameError: 'auth-username-error',
  authPasswordError: 'auth-password-error',
  roomList: 'room-list',
  newRoomName: 'new-room-name',
  newRoomPrivate: 'new-room-private',
  newRoomSubmit: 'new-room-submit',
  newRoomError: 'new-room-error',
  dmUsername: 'dm-username',
  dmSubmit: 'dm-submit',
  dmError: 'dm-error',
  roomTitle: 'room-title',
  joinRoom: 'join-room',
  leaveRoom: 'leave-room',
  leaveConfirm: 'leave-confirm',
  leaveConfirmYes: 'leave-confirm-yes',
  leaveConfirmNo: 'leave-confirm-no',
  inviteUsername: 'invite-username',
  inviteSubmit: 'invite-submit',
  inviteError: 'invite-error',
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
} as const;

export const id = (name: string) => `[data-testid="${name}"]`;

export const transportPicker = (feed: string) => `[data-testid="transport-${feed}"]`;
export const readout = (feed: string) => `[data-testid="readout-${feed}"]`;
