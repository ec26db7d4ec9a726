#!/usr/bin/env bash
# `npm run notebook [-- jupyter options]`: Jupyter Notebook over this repository with the project
# kernel (tslab-study), listening on 127.0.0.1 only, token authentication on.
# STUDY_NOTEBOOK_TOKEN fixes the token (otherwise a random one is printed in the URL),
# STUDY_NOTEBOOK_PORT the port (default 8888);
# extra arguments go to Jupyter, e.g. `npm run notebook -- --port=8890 --no-browser`.
# The token reaches Jupyter in a mode-0600 config file, never on a command line (which `ps` shows
# to every user of the machine).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/environment/setup.sh" --quiet
cd "$root"

python=""
for py in "${STUDY_PYTHON:-}" /usr/bin/python3 python3; do
  [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 || continue
  if "$py" -c 'import notebook' 2>/dev/null; then python=$(command -v "$py"); break; fi
done
[ -n "$python" ] || { echo "notebook: no Python with Jupyter Notebook; run bash environment/setup.sh" >&2; exit 1; }

token=${STUDY_NOTEBOOK_TOKEN:-$(node -e 'process.stdout.write(require("node:crypto").randomBytes(24).toString("hex"))')}
[ -n "$token" ] || { echo "notebook: STUDY_NOTEBOOK_TOKEN is set but empty; refusing to serve without a token" >&2; exit 1; }
# It goes into a URL and a Python string below: URL-safe characters only.
[[ $token =~ ^[A-Za-z0-9._~-]+$ ]] || { echo "notebook: STUDY_NOTEBOOK_TOKEN may hold only letters, digits and . _ ~ -" >&2; exit 1; }

export JUPYTER_PATH="$root/environment/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
export JUPYTER_RUNTIME_DIR="$root/.jupyter-runtime"

# Notebook 6 is a NotebookApp; Notebook 7 runs on jupyter_server (ServerApp + IdentityProvider).
if [ "$("$python" -c 'import notebook; print(notebook.__version__.split(".")[0])')" -ge 7 ]; then
  app=(--ServerApp.ip=127.0.0.1 --ServerApp.allow_remote_access=False --ServerApp.root_dir="$root")
  token_trait=IdentityProvider.token
else
  app=(--NotebookApp.ip=127.0.0.1 --NotebookApp.allow_remote_access=False --NotebookApp.notebook_dir="$root")
  token_trait=NotebookApp.token
fi
# A fixed port (no silent retry on the next one) so that the URL printed here is the right one.
port=${STUDY_NOTEBOOK_PORT:-8888}
rest=()
while [ $# -gt 0 ]; do
  case $1 in
    --port=*) port=${1#--port=} ;;
    --port) port=${2:?--port needs a value}; shift ;;
    *) rest+=("$1") ;;
  esac
  shift
done
[[ $port =~ ^[0-9]+$ ]] || { echo "notebook: --port '$port' is not a port number" >&2; exit 2; }
app+=(--port="$port" --port-retries=0)
# The token in a config file (--config: it replaces the user's jupyter_notebook_config, so that no
# setting there can turn token authentication off), one per port, mode 0600, in the git-ignored
# runtime folder where Jupyter keeps its own server files. The file removes itself once Jupyter
# has read it. `printf` is a shell builtin: the token is on no command line.
mkdir -p -m 700 "$JUPYTER_RUNTIME_DIR"
config="$JUPYTER_RUNTIME_DIR/notebook-config-$port.py"
(umask 077 && rm -f "$config" && printf '# Written by environment/notebook.sh for the server on port %s; removed once read.\nimport os\nc.%s = "%s"\nos.remove(__file__)\n' "$port" "$token_trait" "$token" >"$config")
app+=(--config="$config")
# The config sets the token; these would only reach the kernels, which inherit the environment.
unset JUPYTER_TOKEN JUPYTER_TOKEN_FILE STUDY_NOTEBOOK_TOKEN
# Containers and CI machines often run as root, which Jupyter refuses without this flag.
if [ "$(id -u)" = 0 ]; then app+=(--allow-root); fi
echo "notebook: open http://127.0.0.1:$port/?token=$token" >&2
exec "$python" -m notebook "${app[@]}" ${rest[@]+"${rest[@]}"}
