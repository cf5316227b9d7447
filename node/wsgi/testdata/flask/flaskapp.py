from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/")
def index():
    return "Hello from Flask"


@app.route("/echo", methods=["POST"])
def echo():
    data = request.get_json()
    return jsonify(got=data, path=request.path, args=request.args.to_dict())
