# Start-up helpers for the Slurm scripts beside this file (sourced, not run). They need bash, and
# `scontrol` only for head_node.

# The first node of the allocation: Ray's head.
head_node() {
    scontrol show hostnames "${SLURM_JOB_NODELIST:?not inside a Slurm allocation}" | head -n 1
}

# The head node's address, HOST:PORT, as the other nodes reach it (its IP, or RAY_HEAD_IP if set).
head_address() {
    local port=${1:?usage: head_address PORT} node ip
    node=$(head_node)
    ip=${RAY_HEAD_IP:-$(srun --nodes=1 --ntasks=1 -w "$node" hostname --ip-address | awk '{print $1}')}
    echo "$ip:$port"
}

# A fresh random token: every node and the driver share it (Ray >= 2.59 authenticates by token).
new_token() {
    "${PYTHON:-python3}" -c 'import secrets; print(secrets.token_hex(32))'
}

# Wait until the Ray cluster at ADDRESS has COUNT alive nodes; fail after TIMEOUT seconds (default
# 300) with one line saying how many joined.
wait_for_ray_nodes() {
    local address=${1:?usage: wait_for_ray_nodes ADDRESS COUNT [TIMEOUT]} count=${2:?node count} timeout=${3:-300}
    local probe='import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); print(sum(n["Alive"] for n in ray.nodes()))'
    local deadline=$((SECONDS + timeout)) alive=0
    while ((SECONDS < deadline)); do
        alive=$("${PYTHON:-python3}" -c "$probe" "$address" 2>/dev/null | tail -n 1)
        if [[ $alive =~ ^[0-9]+$ ]] && ((alive >= count)); then
            echo "ray cluster at $address: $alive of $count nodes up"
            return 0
        fi
        sleep 2
    done
    echo "ray cluster at $address: ${alive:-0} of $count nodes joined within ${timeout}s" >&2
    return 1
}
