// Signing in: one small object per provider, all with the same shape, so the rest of the page does not care which
// one the API configured (GET status/config, `sign_in`):
//
//   session.user        null, or {uid, email, name} of the signed-in user
//   session.token()     the user's current ID token (refreshed as needed), or null when nobody is signed in
//   session.signIn()    start signing in (a popup, or a redirect that comes back to this page)
//   session.signOut()
//   session.onChange(f) call f() whenever the user changes
//
// Providers: "firebase" (production: Firebase Authentication, Google sign-in, the SDK from Google's CDN), "issuer"
// (development and tests: a local token issuer's page that redirects back with `#id_token=...&state=...`), and
// "none" (no sign-in: the local stack, whose API needs no token).
"use strict";

export async function startSession(signIn) {
  if (signIn.provider === "firebase") return firebaseSession(signIn);
  if (signIn.provider === "issuer") return issuerSession(signIn);
  return noSession();
}

function noSession() {
  return {provider: "none", user: null, token: async () => null, signIn: async () => {}, signOut: async () => {},
          onChange: () => {}};
}

async function firebaseSession(signIn) {
  // Imported only when used: a page without Firebase sign-in loads nothing from another origin.
  const {initializeApp} = await import(signIn.sdk + "/firebase-app.js");
  const auth = await import(signIn.sdk + "/firebase-auth.js");
  const instance = auth.getAuth(initializeApp(signIn.firebase));
  await instance.authStateReady();
  const listeners = [];
  const session = {
    provider: "firebase",
    user: describe(instance.currentUser),
    token: async () => (instance.currentUser ? instance.currentUser.getIdToken() : null),
    signIn: async () => { await auth.signInWithPopup(instance, new auth.GoogleAuthProvider()); },
    signOut: async () => { await auth.signOut(instance); },
    onChange: (listener) => listeners.push(listener),
  };
  auth.onAuthStateChanged(instance, (user) => {
    session.user = describe(user);
    listeners.forEach((listener) => listener());
  });
  return session;
}

function describe(user) {
  return user ? {uid: user.uid, email: user.email, name: user.displayName} : null;
}

const TOKEN_KEY = "oncetask.idToken";
const STATE_KEY = "oncetask.signInState";
const VIEW_KEY = "oncetask.signInView";  // the address's fragment (the view) when sign-in started, put back after

function issuerSession(signIn) {
  takeTokenFromFragment();
  const listeners = [];
  const current = () => {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const claims = token ? claimsOf(token) : null;
    if (!claims || claims.exp * 1000 <= Date.now()) return null;  // expired: signed out
    return {token, user: {uid: claims.sub, email: claims.email || null, name: claims.name || null}};
  };
  return {
    provider: "issuer",
    get user() { const now = current(); return now ? now.user : null; },
    token: async () => { const now = current(); return now ? now.token : null; },
    signIn: async () => {
      // A random state, checked when the issuer sends the browser back: a link carrying someone else's token
      // does not sign this browser in as them.
      const state = randomState();
      sessionStorage.setItem(STATE_KEY, state);
      sessionStorage.setItem(VIEW_KEY, location.hash);
      const target = new URL(signIn.url, location.href);
      target.searchParams.set("return", location.href.split("#")[0]);
      target.searchParams.set("state", state);
      location.assign(target.toString());
    },
    signOut: async () => {
      sessionStorage.removeItem(TOKEN_KEY);
      listeners.forEach((listener) => listener());
    },
    onChange: (listener) => listeners.push(listener),
  };
}

function takeTokenFromFragment() {
  if (!location.hash.includes("id_token=")) return;
  const answer = new URLSearchParams(location.hash.slice(1));
  const expected = sessionStorage.getItem(STATE_KEY);
  const view = sessionStorage.getItem(VIEW_KEY) || "";
  sessionStorage.removeItem(STATE_KEY);
  sessionStorage.removeItem(VIEW_KEY);
  if (expected && answer.get("state") === expected && answer.get("id_token")) {
    sessionStorage.setItem(TOKEN_KEY, answer.get("id_token"));
  }
  // The token leaves the address bar; the view the user was on comes back (only a view: "#/..." and nothing else).
  history.replaceState(null, "", location.pathname + location.search + (view.startsWith("#/") ? view : ""));
}

function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch (_) {
    return null;
  }
}

function randomState() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
