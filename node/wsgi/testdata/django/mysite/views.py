import hashlib

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt


def hello(request):
    return HttpResponse("Hello from Django", content_type="text/plain")


@csrf_exempt
def echo(request):
    body = request.body
    return JsonResponse({
        "method": request.method,
        "len": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "q": request.GET.get("q"),
        "secure": request.is_secure(),
    })


def boom(request):
    raise RuntimeError("django view exploded")
